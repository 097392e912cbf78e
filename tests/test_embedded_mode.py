"""Embedded mode, started the way `make run` starts it: no services, SQLite, in-process worker."""

import re

import pytest
import requests

from tests.helpers import bare_env, free_port, manage, start_manage, stop, wait_for_http


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("embedded-var")
    env = bare_env(PARLA_VAR_DIR=str(var_dir))
    port = free_port()
    log_path = var_dir / "serve.log"
    process = start_manage("serve", "--setup", "--port", str(port), env=env, log_path=log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", process=process, log_path=log_path)
        key = re.search(r"API key:\s+(\S+)", log_path.read_text()).group(1)
        yield {"base": base, "key": key, "env": env, "var_dir": var_dir, "log": log_path}
    finally:
        stop(process)


def test_embedded_health_reports_sqlite_locmem_and_in_memory_broker(embedded):
    response = requests.get(f"{embedded['base']}/health", params={"deep": 1}, timeout=30)

    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert response.json()["mode"] == "embedded"
    assert checks["database"]["backend"] == "sqlite"
    assert checks["cache"]["backend"] == "LocMemCache"
    assert checks["broker"]["backend"] == "StubBroker"
    assert checks["worker"]["ok"] is True  # The in-process worker ran the ping actor.
    assert (embedded["var_dir"] / "parla.sqlite3").exists()


def test_embedded_demo_key_reads_the_tenant(embedded):
    response = requests.get(
        f"{embedded['base']}/api/v1/tenant", headers={"Authorization": f"Bearer {embedded['key']}"}, timeout=10
    )

    assert response.status_code == 200
    assert response.json()["slug"] == "demo"
    assert response.json()["usage"]["characters_remaining"] > 0


def test_embedded_createtenant_from_a_second_terminal_uses_the_same_database(embedded):
    result = manage("createtenant", "acme", "--owner", "ops@acme.test", env=embedded["env"])
    key = result.stdout.strip().splitlines()[-1]

    response = requests.get(f"{embedded['base']}/api/v1/tenant", headers={"X-API-Key": key}, timeout=10)

    assert result.returncode == 0, result.stderr
    assert response.status_code == 200
    assert response.json()["slug"] == "acme"


def test_embedded_demo_login_opens_the_admin(embedded):
    credentials = re.search(r"Sign in:\s+(\S+) / (\S+)", embedded["log"].read_text())
    session = requests.Session()
    login_url = f"{embedded['base']}/admin/login/"
    session.get(login_url, timeout=10)

    response = session.post(
        login_url,
        data={"username": credentials.group(1), "password": credentials.group(2),
              "csrfmiddlewaretoken": session.cookies["csrftoken"], "next": "/admin/tenants/tenant/"},
        headers={"Referer": login_url},
        timeout=10,
    )

    assert response.status_code == 200
    assert "Demo Company" in response.text
    assert "/static/admin/css/" in response.text
    assert session.get(f"{embedded['base']}/static/css/parla.css", timeout=10).status_code == 200


def test_embedded_sync_speech_runs_on_the_in_process_worker(embedded):
    import io

    import soundfile as sf

    headers = {"Authorization": f"Bearer {embedded['key']}"}

    response = requests.post(f"{embedded['base']}/api/v1/speech", json={"text": "Hello from embedded mode.",
                             "format": "wav"}, headers=headers, timeout=120)
    job = requests.get(f"{embedded['base']}/api/v1/jobs/{response.headers['X-Parla-Job-Id']}", headers=headers,
                       timeout=10).json()

    assert response.status_code == 200, response.text
    samples, rate = sf.read(io.BytesIO(response.content))
    assert len(samples) / rate == pytest.approx(float(response.headers["X-Parla-Audio-Seconds"]), abs=0.01)
    assert job["status"] == "succeeded"


def test_embedded_stream_relays_chunks_from_the_in_process_worker(embedded):
    headers = {"Authorization": f"Bearer {embedded['key']}"}
    text = "One sentence here. Another sentence there. And a third to finish."

    with requests.post(f"{embedded['base']}/api/v1/speech/stream", json={"text": text, "format": "pcm"},
                       headers=headers, stream=True, timeout=120) as response:
        data = b"".join(response.iter_content(chunk_size=None))
    job = requests.get(f"{embedded['base']}/api/v1/jobs/{response.headers['X-Parla-Job-Id']}", headers=headers,
                       timeout=10).json()

    # How the bytes are cut on the wire is up to the sockets; sentence-by-sentence delivery
    # is asserted in tests/synthesis/test_speech_worker.py.
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("audio/pcm; rate=22050")
    assert len(data) == job["size_bytes"]
    assert len(data) / 2 / 22050 == pytest.approx(job["audio_seconds"], abs=0.01)
