"""Batches on real `rundramatiq` worker processes: crashes, poison items, a Redis restart, a
hung synthesis and a deploy's SIGTERM. Nothing is lost, duplicated or billed twice.

The misbehaving voices come from tests/batches/faulty_engine.py, plugged in through
PARLA_EXTRA_ENGINES the way an operator adds an engine of their own.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from analytics.models import UsageRecord
from batches.models import Batch
from synthesis.engines import registry
from synthesis.models import SynthesisJob
from tenants.models import UsagePeriod
from tests.helpers import free_port, start_manage, start_process, stop
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

FAULTY = "faulty=tests.batches.faulty_engine.FaultyEngine"


def _sentences(count: int) -> list[str]:
    return [f"Line {n} of the batch, read aloud." for n in range(1, count + 1)]


@pytest.fixture
def faulty_engines(settings):
    settings.PARLA_ENGINES = ["piper", "faulty"]
    settings.PARLA_EXTRA_ENGINES = dict([FAULTY.split("=")])
    settings.PARLA_WORKER_HEARTBEAT_SECONDS = 1
    registry.reset_engines()
    yield
    registry.reset_engines()


class Workers:
    """Starts worker processes on the test database, as a process supervisor would."""

    def __init__(self, tmp_path: Path, **env: str):
        database = django_settings.DATABASES["default"]
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "PARLA_MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
            "PARLA_ENGINES": "piper,faulty",
            "PARLA_EXTRA_ENGINES": FAULTY,
            "PARLA_WORKER_HEARTBEAT_SECONDS": "1",
            "PARLA_MAINTENANCE_INTERVAL_SECONDS": "1",
            "PARLA_JOB_REQUEUE_SECONDS": "20",
            **env,
        }
        self.processes: list[subprocess.Popen] = []

    def start(self, threads: int = 2) -> subprocess.Popen:
        log_path = self.tmp_path / f"worker-{len(self.processes)}.log"
        process = start_manage("rundramatiq", "--processes", "1", "--threads", str(threads), "--queues",
                               "synthesis-cpu", "default", "exports", env=self.env, log_path=log_path)
        process.log_path = log_path
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(p.log_path.read_text()[-2000:] for p in self.processes)

    def stop_all(self) -> None:
        for process in self.processes:
            stop(process)


@pytest.fixture
def workers(tmp_path, faulty_engines):
    made = []

    def make(**env):
        made.append(Workers(tmp_path, **env))
        return made[-1]

    yield make
    for item in made:
        item.stop_all()


def _wait(predicate, *, timeout: float, what: str, workers: Workers | None = None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{workers.logs() if workers else ''}")
        time.sleep(0.25)


def _batch(client, items, **extra) -> Batch:
    response = client.post("/api/v1/batches", {"items": items, "format": "wav", **extra}, format="json")
    assert response.status_code == 201, response.json()
    return Batch.objects.get(pk=response.json()["id"])


def _counts(batch) -> dict[str, int]:
    from batches.services import batch_counts

    return batch_counts(tenant=batch.tenant_id, batch=batch)


def _finished(batch) -> bool:
    batch.refresh_from_db()
    return batch.finished and batch.export_status in ("ready", "failed")


def _audio_files(tenant) -> list[Path]:
    folder = Path(django_settings.MEDIA_ROOT) / "tenants" / str(tenant.pk) / "jobs"
    return sorted(folder.glob("*")) if folder.exists() else []


def test_killed_worker_mid_batch_every_item_completes_exactly_once(api_client_for, workers):
    tenant = TenantFactory()
    batch = _batch(api_client_for(tenant), _sentences(100))
    pool = workers()
    first = pool.start()
    _wait(lambda: _counts(batch)["succeeded"] >= 20, timeout=240, what="20 items", workers=pool)

    os.killpg(first.pid, signal.SIGKILL)  # A host that died: no shutdown, no acks.
    first.wait()
    pool.start()
    _wait(lambda: _finished(batch), timeout=400, what="the batch to end", workers=pool)

    assert batch.status == "completed", pool.logs()
    assert _counts(batch)["succeeded"] == 100
    records = UsageRecord.objects.for_tenant(tenant).filter(job__batch=batch)
    assert records.count() == 100
    assert len(set(records.values_list("job_id", flat=True))) == 100
    stored = set(SynthesisJob.objects.for_tenant(tenant).filter(batch=batch).values_list("storage_path", flat=True))
    assert {f"tenants/{tenant.pk}/jobs/{p.name}" for p in _audio_files(tenant)} == stored  # No orphans.
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_used, period.characters_reserved) == (batch.characters_total, 0)


def test_an_item_that_kills_its_worker_fails_after_two_deaths_and_the_others_complete(api_client_for, workers):
    # Two threads: other items are in flight in the process when it dies. They run again (and
    # alone, as suspects); the item that kills its worker runs alone on its one retry, kills
    # only itself, and is then failed and refunded.
    tenant = TenantFactory()
    items = [{"text": line} for line in _sentences(8)]
    items[3] = {"text": "This line kills its worker.", "voice": "faulty:crash"}
    batch = _batch(api_client_for(tenant), items)
    pool = workers()
    deaths = 0
    deadline = time.monotonic() + 400
    while not _finished(batch):
        process = pool.start(threads=2)
        while process.poll() is None and not _finished(batch):
            assert time.monotonic() < deadline, pool.logs()
            time.sleep(0.25)
        deaths += process.poll() is not None
        assert deaths <= 2, pool.logs()  # No single item takes a worker down a third time.

    poison = SynthesisJob.objects.for_tenant(tenant).get(batch=batch, batch_index=3)
    assert batch.status == "completed_with_errors"
    assert (poison.status, poison.error_code, poison.worker_deaths) == ("failed", "synthesis_failed", 2)
    assert deaths == 2
    assert _counts(batch)["succeeded"] == 7, pool.logs()
    assert not UsageRecord.objects.for_tenant(tenant).filter(job=poison).exists()
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == batch.characters_total - poison.characters


def test_redis_restart_mid_batch_loses_and_duplicates_nothing(api_client_for, workers, tmp_path, monkeypatch):
    # The workers get a Redis of their own, so restarting it touches nothing else. The batch's
    # messages are not sent from here: the workers' upkeep finds the queued items in the
    # database and sends them, the same path that recovers them after the restart.
    monkeypatch.setattr("batches.services._enqueue_items", lambda batch, job_ids: None)
    port = free_port()

    def redis_server() -> subprocess.Popen:
        return start_process(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"])

    redis = redis_server()
    try:
        tenant = TenantFactory()
        batch = _batch(api_client_for(tenant), _sentences(40))
        pool = workers(REDIS_URL=f"redis://127.0.0.1:{port}/0")
        pool.start()
        _wait(lambda: _counts(batch)["succeeded"] >= 8, timeout=240, what="8 items", workers=pool)

        redis.kill()  # Every queued message, heartbeat and lock is gone.
        redis.wait()
        time.sleep(1)
        redis = redis_server()
        _wait(lambda: _finished(batch), timeout=400, what="the batch to end", workers=pool)
    finally:
        stop(redis)

    assert batch.status == "completed", pool.logs()
    assert UsageRecord.objects.for_tenant(tenant).filter(job__batch=batch).count() == 40
    assert all(attempts <= 2 for attempts in
               SynthesisJob.objects.for_tenant(tenant).filter(batch=batch).values_list("attempts", flat=True))
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == batch.characters_total


def test_hung_synthesis_is_stopped_by_its_time_limit_and_the_worker_carries_on(api_client_for, workers):
    tenant = TenantFactory()
    items = [{"text": line} for line in _sentences(4)]
    items[1] = {"text": "This line never finishes.", "voice": "faulty:hang"}
    batch = _batch(api_client_for(tenant), items)
    pool = workers(PARLA_JOB_TIME_LIMIT_SECONDS="3")
    pool.start(threads=1)  # One thread: the others can only run if the hung one lets go.

    _wait(lambda: _finished(batch), timeout=300, what="the batch to end", workers=pool)

    hung = SynthesisJob.objects.for_tenant(tenant).get(batch=batch, batch_index=1)
    assert batch.status == "completed_with_errors", pool.logs()
    assert (hung.status, hung.attempts) == ("failed", 3)
    assert _counts(batch)["succeeded"] == 3


def test_sigterm_lets_running_items_finish_and_the_next_worker_continues(api_client_for, workers):
    tenant = TenantFactory()
    batch = _batch(api_client_for(tenant), _sentences(30))
    pool = workers()
    first = pool.start()
    _wait(lambda: _counts(batch)["succeeded"] >= 5, timeout=240, what="5 items", workers=pool)

    # A deploy: the supervisor signals the main process, which asks its workers to stop.
    # (A second SIGTERM to a worker process means "stop now", so the group is not signalled.)
    os.kill(first.pid, signal.SIGTERM)
    first.wait(timeout=120)
    pool.start()
    _wait(lambda: _finished(batch), timeout=300, what="the batch to end", workers=pool)

    assert batch.status == "completed", pool.logs()
    jobs = SynthesisJob.objects.for_tenant(tenant).filter(batch=batch).order_by("batch_index")
    rerun = [(j.batch_index, j.attempts, j.worker_id) for j in jobs if j.attempts != 1]
    assert rerun == [], pool.logs()  # Nothing was interrupted and run again.
    assert UsageRecord.objects.for_tenant(tenant).filter(job__batch=batch).count() == 30


def test_batch_end_delivers_a_signed_webhook_and_logs_it(api_client_for, workers, settings):
    from batches.webhooks import SIGNATURE_HEADER, verify
    from tests.batches.test_webhooks import Receiver

    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = True  # The receiver listens on loopback,
    receiver = Receiver([500, 200])  # The first attempt fails; the retry is delivered.
    port = str(receiver.server.server_port)
    settings.PARLA_WEBHOOK_ALLOWED_PORTS = [int(port)]  # on a port of its own.
    try:
        tenant = TenantFactory()
        client = api_client_for(tenant)
        batch = _batch(client, _sentences(3), webhook_url=receiver.url)
        pool = workers(PARLA_WEBHOOK_ALLOW_PRIVATE="true", PARLA_WEBHOOK_ALLOWED_PORTS=port)
        pool.start()
        _wait(lambda: len(receiver.requests) >= 2, timeout=240, what="the webhook retry", workers=pool)
    finally:
        receiver.close()

    headers, body = receiver.requests[-1]
    assert verify(secret=tenant.webhook_secret, header=headers[SIGNATURE_HEADER], body=body)
    event = __import__("json").loads(body)
    assert (event["event"], event["batch"]["id"], event["batch"]["counts"]["succeeded"]) == (
        "batch.completed", batch.pk, 3)
    assert event["batch"]["export_url"] == f"/api/v1/batches/{batch.pk}/export"
    log = client.get(f"/api/v1/batches/{batch.pk}/webhooks").json()["results"]
    assert [(row["status"], row["attempts"], row["last_status_code"]) for row in log] == [("delivered", 2, 200)]


def test_batch_submit_command_follows_the_batch_to_its_end(workers, tmp_path):
    import io

    from django.core.management import call_command

    tenant = TenantFactory()
    lines = tmp_path / "chapter.md"
    lines.write_text("# Chapter one\n\nIt was a bright cold day.\n\nThe clocks were striking thirteen.\n")
    pool = workers()
    pool.start()
    out = io.StringIO()

    call_command("batch_submit", str(lines), "--tenant", tenant.slug, "--format", "mp3", "--interval", "0.2",
                 stdout=out)

    text = out.getvalue()
    batch = Batch.objects.for_tenant(tenant).get()
    assert f"Batch {batch.pk}: 3 items" in text
    assert "100.0%" in text and "ETA" in text
    assert text.rstrip().endswith(f"Batch {batch.pk} completed. Export: ready ({batch.export_path})")
    assert batch.name == "chapter.md"


def test_batch_submit_command_names_a_bad_line(tmp_path):
    from django.core.management import CommandError, call_command

    tenant = TenantFactory()
    lines = tmp_path / "lines.txt"
    lines.write_text("Fine.\n?! ...\n")

    with pytest.raises(CommandError, match="invalid_text: Line 2"):
        call_command("batch_submit", str(lines), "--tenant", tenant.slug, "--no-wait")
