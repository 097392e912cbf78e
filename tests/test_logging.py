"""Structured logs: JSON lines, a request id per request (echoed, carried to the worker), and
the tenant id on every line once authentication knows it."""

import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import dramatiq
import pytest
from django.http import StreamingHttpResponse
from django.test import RequestFactory
from rest_framework.test import APIClient

from config.logging import (
    ContextFilter,
    JsonFormatter,
    log_context,
    message_log_fields,
    message_request_id_attach,
)
from config.request_context import RequestContextMiddleware
from tests.tenants.factories import MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines():
    """Every line logged during the test, through Parla's JSON formatter and context filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def _django_request_line(lines: list[dict], path: str) -> dict:
    matching = [line for line in lines if line["logger"] == "django.request" and path in line["message"]]
    assert len(matching) == 1, lines
    return matching[0]


# --- The formatter ---------------------------------------------------------------------------


def test_json_formatter_writes_one_object_per_line_with_every_extra_field():
    record = logging.LogRecord("parla.check", logging.ERROR, __file__, 1, "job %s failed\nbadly", (7,), None)
    record.job_id, record.started = 7, datetime(2026, 1, 2, 3, 4, 5)
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()

    line = JsonFormatter().format(record)

    assert "\n" not in line
    body = json.loads(line)
    assert body["level"] == "ERROR"
    assert body["logger"] == "parla.check"
    assert body["message"] == "job 7 failed\nbadly"
    assert (body["job_id"], body["started"]) == (7, "2026-01-02T03:04:05")
    assert "ValueError: boom" in body["exception"]
    assert body["time"].endswith("Z")
    assert datetime.fromisoformat(body["time"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0


def test_extra_fields_win_over_the_context():
    record = logging.LogRecord("parla.check", logging.INFO, __file__, 1, "event", None, None)
    record.tenant_id = 99

    with log_context(request_id="req-1", tenant_id=5):
        ContextFilter().filter(record)

    assert (record.request_id, record.tenant_id) == ("req-1", 99)


# --- Requests ----------------------------------------------------------------------------


def test_api_key_request_lines_carry_request_id_and_tenant_id(api_client_for, tenant, json_lines, monkeypatch):
    monkeypatch.setattr("synthesis.jobs.create.enqueue", lambda job: None)  # no worker needed here
    client = api_client_for(tenant)

    created = client.post("/api/v1/jobs", {"text": "Logged words."}, format="json")
    missing = client.get("/api/v1/jobs/987654321")

    lines = json_lines()
    assert created.status_code == 202
    create_line = next(line for line in lines if line["message"] == "synthesis_job_create.created")
    assert create_line["request_id"] == created["X-Request-ID"]
    assert create_line["tenant_id"] == tenant.pk
    # Django logs the 404 after every middleware has returned; it still knows its request.
    not_found = _django_request_line(lines, "/api/v1/jobs/987654321")
    assert not_found["request_id"] == missing["X-Request-ID"]
    assert not_found["tenant_id"] == tenant.pk
    assert created["X-Request-ID"] != missing["X-Request-ID"]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_session_request_lines_carry_the_members_tenant_id(json_lines):
    membership = MembershipFactory()
    client = APIClient()
    client.force_login(membership.user)

    response = client.get("/api/v1/jobs/987654321")

    line = _django_request_line(json_lines(), "/api/v1/jobs/987654321")
    assert response.status_code == 404
    assert line["tenant_id"] == membership.tenant_id
    assert line["request_id"] == response["X-Request-ID"]


def test_unauthenticated_request_lines_have_the_request_id_and_a_null_tenant(json_lines):
    response = APIClient().get("/api/v1/jobs/987654321")

    line = _django_request_line(json_lines(), "/api/v1/jobs/987654321")
    assert response.status_code == 401
    assert line["request_id"] == response["X-Request-ID"]
    assert "tenant_id" in line and line["tenant_id"] is None


@pytest.mark.parametrize("incoming", ["edge-7f3c.9a_01", "a" * 128])
def test_sane_incoming_request_id_is_kept_and_echoed(api_client_for, tenant, json_lines, incoming):
    response = api_client_for(tenant).get("/api/v1/jobs/987654321", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] == incoming
    assert _django_request_line(json_lines(), "/api/v1/jobs/987654321")["request_id"] == incoming


@pytest.mark.parametrize("incoming", ["has space", "a" * 129, "semi;colon", "ünïcode", "new\\nline", ""])
def test_bad_incoming_request_id_is_replaced(api_client_for, tenant, json_lines, incoming):
    response = api_client_for(tenant).get("/api/v1/jobs/987654321", HTTP_X_REQUEST_ID=incoming)

    assert GENERATED_ID.fullmatch(response["X-Request-ID"])
    assert _django_request_line(json_lines(), "/api/v1/jobs/987654321")["request_id"] == response["X-Request-ID"]


def test_every_response_gets_a_request_id_even_outside_the_api():
    response = APIClient().get("/no/such/page")

    assert response.status_code == 404
    assert GENERATED_ID.fullmatch(response["X-Request-ID"])


def test_streamed_body_is_logged_in_its_requests_context(json_lines):
    def body():
        for n in range(2):
            logging.getLogger("parla.check").info("chunk.sent", extra={"n": n})
            yield b"chunk"

    middleware = RequestContextMiddleware(lambda request: StreamingHttpResponse(body()))
    response = middleware(RequestFactory().get("/stream", HTTP_X_REQUEST_ID="stream-1"))

    assert b"".join(response.streaming_content) == b"chunkchunk"  # consumed after the middleware returned
    chunk_lines = [line for line in json_lines() if line["message"] == "chunk.sent"]
    assert [line["request_id"] for line in chunk_lines] == ["stream-1", "stream-1"]


# --- Messages and workers ------------------------------------------------------------------


def test_message_sent_during_a_request_carries_its_id_and_the_worker_reads_the_actors_ids():
    from synthesis.tasks.actors import synthesis_job_run

    message = synthesis_job_run.message(12, 34)
    with log_context(request_id="req-abc", tenant_id=12):
        message_request_id_attach(message)

    fields = message_log_fields(dramatiq.get_broker(), message)

    assert fields["request_id"] == "req-abc"
    assert (fields["tenant_id"], fields["job_id"], fields["actor"]) == (12, 34, "synthesis_job_run")


@pytest.fixture(scope="module")
def json_worker(django_db_setup, tmp_path_factory):
    """A real `rundramatiq` process on the test database that logs JSON lines.

    It consumes synthesis-cpu only and runs no upkeep, so nothing it does after a job (usage
    rollups on the default queue) can still hold table locks when the test's tables are
    truncated.
    """
    from django.conf import settings

    from tests.helpers import start_manage, stop
    from tests.synthesis.conftest import _wait_for_presence

    database = settings.DATABASES["default"]
    log_path = tmp_path_factory.mktemp("json-worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PARLA_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PARLA_LOG_FORMAT": "json",
        "PARLA_MAINTENANCE_INTERVAL_SECONDS": "3600",
    }
    process = start_manage(
        "rundramatiq", "--processes", "1", "--threads", "1", "--queues", "synthesis-cpu",
        env=env, log_path=log_path,
    )
    process.log_path = log_path
    _wait_for_presence("synthesis-cpu", process)
    yield process
    stop(process)


def _json_lines_of(path: Path) -> list[dict]:
    # The Dramatiq launcher prints a few plain lines of its own; worker processes log JSON.
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]  # the worker may be writing the last line right now
    return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]


@pytest.mark.django_db(transaction=True)
def test_worker_lines_for_a_job_carry_the_request_id_of_the_request_that_sent_it(api_client_for, json_worker):
    tenant = TenantFactory()
    request_id = f"trace-{uuid.uuid4().hex}"

    response = api_client_for(tenant).post(
        "/api/v1/speech", {"text": "Follow this request.", "format": "wav"}, format="json",
        HTTP_X_REQUEST_ID=request_id,
    )
    job_id = int(response["X-Parla-Job-Id"])
    deadline = time.monotonic() + 30
    while not any(line.get("job_id") == job_id and line["message"] == "synthesis_job_run.succeeded"
                  for line in _json_lines_of(json_worker.log_path)):
        assert time.monotonic() < deadline, json_worker.log_path.read_text()[-3000:]
        time.sleep(0.2)

    assert response.status_code == 200
    assert response["X-Request-ID"] == request_id
    job_lines = [line for line in _json_lines_of(json_worker.log_path) if line.get("job_id") == job_id]
    assert {line["request_id"] for line in job_lines} == {request_id}
    assert {line["tenant_id"] for line in job_lines} == {tenant.pk}
    # A line that names neither the job nor the tenant itself: the context adds them.
    loaded = [line for line in job_lines if line["message"] == "engine.loaded"]
    assert loaded and loaded[0]["engine"] == "piper" and loaded[0]["actor"] == "synthesis_job_run"


# --- Settings ----------------------------------------------------------------------------


def _production_env(**overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "parla.example.com",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    env.update(overrides)
    return env


_LOG_TWO_LINES = """
import django, logging
django.setup()
from config.logging import log_context
log = logging.getLogger("parla.check")
log.info("outside.event", extra={"answer": 42})
with log_context(request_id="req-1", tenant_id=7):
    log.warning("inside.event")
"""


def _run(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _LOG_TWO_LINES], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_production_logs_one_json_object_per_line_on_stdout():
    result = _run(_production_env())

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["message"], line["level"]) for line in lines] == [
        ("outside.event", "INFO"), ("inside.event", "WARNING"),
    ]
    assert lines[0]["answer"] == 42
    assert (lines[1]["request_id"], lines[1]["tenant_id"]) == ("req-1", 7)
    assert "event" not in result.stderr


def test_plain_log_format_writes_the_same_fields_as_text():
    result = _run(_production_env(PARLA_LOG_FORMAT="plain"))

    assert result.returncode == 0, result.stderr
    outside, inside = result.stdout.splitlines()
    assert outside.endswith("INFO parla.check outside.event answer=42")
    assert inside.endswith("WARNING parla.check inside.event request_id=req-1 tenant_id=7")


def test_unknown_log_format_fails_fast():
    result = _run(_production_env(PARLA_LOG_FORMAT="xml"))

    assert result.returncode != 0
    assert "PARLA_LOG_FORMAT must be one of json, plain" in result.stderr
