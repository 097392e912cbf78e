"""GET /metrics: who may read it, what processes count in Redis, and what is read when scraped.

Counts are shared by every process of a test session (one Redis key prefix), so each test
compares a scrape after its action with one taken before it.
"""

import logging
import socket

import dramatiq
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from config import metrics_recording
from config.dramatiq import QUEUE_SYNTHESIS_GPU
from config.runtime.connection import redis_connect
from synthesis.jobs import TextTooLong
from tenants.errors import ConcurrencyLimitExceeded, QuotaExceeded
from tenants.quotas import job_slot_acquire, quota_reserve
from tests.helpers import signed_in_client
from tests.tenants.factories import MembershipFactory, TenantFactory
from voices.errors import PlanLimitReached

pytestmark = pytest.mark.django_db

OUTSIDE = "203.0.113.7"  # TEST-NET-3: never loopback, never a private network


def _scrape(client: APIClient | None = None, **request) -> dict[tuple[str, tuple], float]:
    response = (client or APIClient()).get("/metrics", **request)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _with_name(samples: dict, name: str) -> dict[tuple, float]:
    return {labels: value for (sample_name, labels), value in samples.items() if sample_name == name}


# --- Who may read it ---------------------------------------------------------------------


def test_metrics_serves_loopback_clients_by_default():
    response = APIClient().get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"] == prometheus_client.CONTENT_TYPE_LATEST  # the text format


def test_metrics_hides_itself_from_other_addresses_by_default():
    response = APIClient().get("/metrics", REMOTE_ADDR=OUTSIDE)

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "extra": {}}


def test_metrics_with_a_token_refuses_requests_without_it(settings):
    settings.PARLA_METRICS_TOKEN = "scrape-token-0123456789"

    missing = APIClient().get("/metrics")
    wrong = APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    basic = APIClient().get("/metrics", HTTP_AUTHORIZATION="Basic c2NyYXBlLXRva2VuLTAxMjM0NTY3ODk=")

    for response in (missing, wrong, basic):
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert set(response.json()) == {"code", "message", "extra"}


def test_metrics_with_a_token_serves_any_address_that_sends_it(settings):
    settings.PARLA_METRICS_TOKEN = "scrape-token-0123456789"

    response = APIClient().get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")

    assert response.status_code == 200
    assert b"parla_http_requests_total" in response.content


def test_metrics_allowed_networks_replace_loopback(settings):
    settings.PARLA_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "fd00::/8"]

    inside = APIClient().get("/metrics", REMOTE_ADDR="10.20.30.40")
    inside_v6 = APIClient().get("/metrics", REMOTE_ADDR="fd00::17")
    outside = APIClient().get("/metrics", REMOTE_ADDR=OUTSIDE)
    loopback = APIClient().get("/metrics")

    assert (inside.status_code, inside_v6.status_code) == (200, 200)
    assert (outside.status_code, loopback.status_code) == (404, 404)
    assert outside.json()["code"] == "not_found"


def test_metrics_with_token_and_networks_needs_both(settings):
    settings.PARLA_METRICS_TOKEN = "scrape-token-0123456789"
    settings.PARLA_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    auth = {"HTTP_AUTHORIZATION": "Bearer scrape-token-0123456789"}

    token_outside = APIClient().get("/metrics", REMOTE_ADDR=OUTSIDE, **auth)
    inside_no_token = APIClient().get("/metrics", REMOTE_ADDR="10.0.0.5")
    both = APIClient().get("/metrics", REMOTE_ADDR="10.0.0.5", **auth)

    assert (token_outside.status_code, inside_no_token.status_code, both.status_code) == (404, 403, 200)


def test_metrics_ipv4_client_on_a_dual_stack_socket_counts_as_loopback():
    response = APIClient().get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1")

    assert response.status_code == 200


def test_metrics_refuses_writes_in_the_error_shape():
    response = APIClient().post("/metrics")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# --- The exposition ----------------------------------------------------------------------


def test_metrics_output_parses_and_documents_every_family():
    response = APIClient().get("/metrics")

    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}

    assert {
        "parla_http_requests", "parla_http_request_duration_seconds", "parla_jobs",
        "parla_jobs_oldest_queued_age_seconds", "parla_queue_depth", "parla_queue_dead_letters",
        "parla_synthesis_processing_seconds", "parla_synthesis_audio_seconds",
        "parla_synthesis_job_processing_seconds", "parla_synthesis_cache_requests",
        "parla_quota_rejections", "parla_workers_alive", "parla_worker_heartbeat_age_seconds",
        "parla_metrics_source_up",
    } <= set(families)
    assert all(family.documentation for family in families.values())
    assert families["parla_http_request_duration_seconds"].type == "histogram"
    assert families["parla_quota_rejections"].type == "counter"
    assert {s.labels["source"]: s.value for s in families["parla_metrics_source_up"].samples} == {
        "counters": 1, "database": 1, "broker": 1, "workers": 1,
    }


# --- HTTP requests -----------------------------------------------------------------------


def test_api_requests_are_counted_under_their_route_name(api_client_for, tenant):
    client = api_client_for(tenant)
    before = _scrape()

    for _ in range(3):
        assert client.get("/api/v1/tenant").status_code == 200
    assert client.get("/api/v1/jobs/987654321").status_code == 404
    after = _scrape()

    requests = "parla_http_requests_total"
    assert _value(after, requests, endpoint="tenant", method="GET", status="200") - \
        _value(before, requests, endpoint="tenant", method="GET", status="200") == 3
    assert _value(after, requests, endpoint="job-detail", method="GET", status="404") - \
        _value(before, requests, endpoint="job-detail", method="GET", status="404") == 1
    count = "parla_http_request_duration_seconds_count"
    assert _value(after, count, endpoint="tenant", method="GET") - \
        _value(before, count, endpoint="tenant", method="GET") == 3
    infinite = "parla_http_request_duration_seconds_bucket"
    assert _value(after, infinite, endpoint="tenant", method="GET", le="+Inf") - \
        _value(before, infinite, endpoint="tenant", method="GET", le="+Inf") == 3
    assert _value(after, "parla_http_request_duration_seconds_sum", endpoint="tenant", method="GET") > \
        _value(before, "parla_http_request_duration_seconds_sum", endpoint="tenant", method="GET")
    # Never the raw path: an id in a URL must not become a series of its own.
    assert not any("987654321" in value for labels in after for _, value in labels[1])


def test_latency_buckets_are_cumulative_and_fixed(api_client_for, tenant):
    api_client_for(tenant).get("/api/v1/tenant")

    samples = _with_name(_scrape(), "parla_http_request_duration_seconds_bucket")
    series = sorted(
        (float(dict(labels)["le"]), value) for labels, value in samples.items()
        if dict(labels)["endpoint"] == "tenant" and dict(labels)["method"] == "GET"
    )

    assert [bound for bound, _ in series] == [*metrics_recording.HTTP_BUCKETS, float("inf")]
    assert [value for _, value in series] == sorted(value for _, value in series)


def test_unknown_paths_and_strange_methods_keep_labels_bounded():
    before = _scrape()

    APIClient().get("/no/such/page/123")
    APIClient().generic("BREW", "/api/v1/tenant")
    after = _scrape()

    requests = "parla_http_requests_total"
    assert _value(after, requests, endpoint="unmatched", method="GET", status="404") - \
        _value(before, requests, endpoint="unmatched", method="GET", status="404") == 1

    def brewed(samples):
        return sum(value for labels, value in _with_name(samples, requests).items()
                   if dict(labels)["endpoint"] == "tenant" and dict(labels)["method"] == "other")

    assert brewed(after) - brewed(before) == 1
    assert not any(dict(labels)["method"] == "BREW" for labels in _with_name(after, requests))


def test_metrics_recording_failure_never_breaks_a_request(api_client_for, tenant, monkeypatch, caplog):
    # Redis that cannot be reached (nothing listens on port 1) in place of the real one.
    recording = metrics_recording
    unreachable = recording._RedisCounts(redis_connect("redis://127.0.0.1:1/0", fail_fast=True), "unreachable")
    monkeypatch.setattr(recording, "_store", lambda: unreachable)
    monkeypatch.setattr(recording, "_failing", set())
    monkeypatch.setattr(recording, "_record_paused_until", 0.0)
    client = api_client_for(tenant)

    with caplog.at_level(logging.WARNING, logger="config.metrics_recording"):
        statuses = [client.get("/api/v1/tenant").status_code for _ in range(3)]
        scraped = APIClient().get("/metrics")

    assert statuses == [200, 200, 200]
    assert [r.getMessage() for r in caplog.records if r.name == "config.metrics_recording"] == [
        "metrics.failed", "metrics.failed",  # once for recording, once for reading at the scrape
    ]
    assert scraped.status_code == 200
    assert b'parla_metrics_source_up{source="counters"} 0.0' in scraped.content
    assert b'parla_metrics_source_up{source="database"} 1.0' in scraped.content


# --- Quota rejections --------------------------------------------------------------------


def _rejections(samples: dict, reason: str) -> float:
    return _value(samples, "parla_quota_rejections_total", reason=reason)


def test_rate_limit_rejection_is_counted(api_client_for):
    tenant = TenantFactory(plan__requests_per_minute=2)
    client = api_client_for(tenant)
    before = _scrape()

    statuses = [client.get("/api/v1/tenant").status_code for _ in range(3)]
    after = _scrape()

    assert statuses == [200, 200, 429]
    assert _rejections(after, "rate_limit") - _rejections(before, "rate_limit") == 1


def test_character_quota_rejection_is_counted(api_client_for):
    tenant = TenantFactory(plan__monthly_characters=10)
    before = _scrape()

    response = api_client_for(tenant).post("/api/v1/jobs", {"text": "x" * 11}, format="json")
    after = _scrape()

    assert (response.status_code, response.json()["code"]) == (429, "quota_exceeded")
    assert _rejections(after, "characters") - _rejections(before, "characters") == 1


def test_concurrent_jobs_rejection_is_counted(api_client_for):
    tenant = TenantFactory(plan__concurrent_jobs=1)
    job_slot_acquire(tenant=tenant)
    before = _scrape()

    response = api_client_for(tenant).post("/api/v1/jobs", {"text": "One at a time."}, format="json")
    after = _scrape()

    assert (response.status_code, response.json()["code"]) == (429, "concurrency_limit_exceeded")
    assert _rejections(after, "concurrent_jobs") - _rejections(before, "concurrent_jobs") == 1


def test_a_refusal_is_counted_where_it_is_answered_not_where_it_is_raised():
    tenant = TenantFactory(plan__monthly_characters=10, plan__concurrent_jobs=1)
    before = _scrape()

    TextTooLong("Too long.")
    PlanLimitReached("No more voices.")
    with pytest.raises(QuotaExceeded):
        quota_reserve(tenant=tenant, characters=11)
    job_slot_acquire(tenant=tenant)
    with pytest.raises(ConcurrencyLimitExceeded):
        job_slot_acquire(tenant=tenant)
    after = _scrape()

    for reason in metrics_recording.QUOTA_REASONS:
        assert _rejections(after, reason) == _rejections(before, reason), reason


def test_plan_limit_rejection_on_the_api_is_counted(api_client_for):
    tenant = TenantFactory(plan__request_characters=20)
    before = _scrape()

    response = api_client_for(tenant).post("/api/v1/jobs", {"text": "x" * 21}, format="json")
    after = _scrape()

    assert response.status_code == 400
    assert response.json()["code"] == "text_too_long"
    assert _rejections(after, "plan_limit") - _rejections(before, "plan_limit") == 1
    assert _rejections(after, "characters") == _rejections(before, "characters")


def test_a_batch_over_the_plans_size_is_counted_but_other_invalid_batches_are_not(api_client_for, monkeypatch):
    monkeypatch.setattr("synthesis.jobs.create.enqueue", lambda job: None)  # nothing may run here
    client = api_client_for(TenantFactory(plan__batch_items=2))
    before = _scrape()

    over = client.post("/api/v1/batches", {"items": ["One.", "Two.", "Three."]}, format="json")
    unreadable = client.post("/api/v1/batches", {"items": [{"text": "One.", "colour": "red"}]}, format="json")
    after = _scrape()

    assert (over.status_code, over.json()["code"]) == (400, "invalid_batch")
    assert (unreadable.status_code, unreadable.json()["code"]) == (400, "invalid_batch")
    assert _rejections(after, "plan_limit") - _rejections(before, "plan_limit") == 1


def test_a_plan_limit_refused_on_the_speak_page_is_counted():
    membership = MembershipFactory(role="member", tenant__plan__request_characters=20)
    form = {"input_mode": "text", "text": "x" * 21, "voice": "piper:en_US-joe-medium", "format": "mp3",
            "sample_rate": "", "speed": "1", "pitch": "0", "loudness": ""}
    before = _scrape()

    response = signed_in_client(membership).post("/app/speak/", form)
    after = _scrape()

    assert response.status_code == 200  # the form again, with the error on it
    assert _rejections(after, "plan_limit") - _rejections(before, "plan_limit") == 1


def test_a_rate_limit_refused_on_a_page_is_counted(monkeypatch):
    monkeypatch.setattr("synthesis.jobs.create.enqueue", lambda job: None)  # nothing may run here
    membership = MembershipFactory(role="member", tenant__plan__requests_per_minute=1)
    form = {"input_mode": "text", "text": "Hello there.", "voice": "piper:en_US-joe-medium", "format": "mp3",
            "sample_rate": "", "speed": "1", "pitch": "0", "loudness": ""}
    client = signed_in_client(membership)
    before = _scrape()

    statuses = [client.post("/app/speak/", form).status_code for _ in range(2)]
    after = _scrape()

    assert statuses == [302, 429]
    assert _rejections(after, "rate_limit") - _rejections(before, "rate_limit") == 1


# --- Read at scrape time -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cpu_worker(django_db_setup, tmp_path_factory):
    """A real `rundramatiq` process consuming synthesis-cpu, on the test database.

    It runs no upkeep and leaves the default queue (usage rollups) alone, so nothing it does
    after a job can still hold table locks when the test's tables are truncated.
    """
    import os

    from django.conf import settings

    from tests.helpers import start_manage, stop
    from tests.synthesis.conftest import _wait_for_presence

    database = settings.DATABASES["default"]
    log_path = tmp_path_factory.mktemp("metrics-worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PARLA_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PARLA_MAINTENANCE_INTERVAL_SECONDS": "3600",
    }
    process = start_manage(
        "rundramatiq", "--processes", "1", "--threads", "2", "--queues", "synthesis-cpu",
        env=env, log_path=log_path,
    )
    process.log_path = log_path
    _wait_for_presence("synthesis-cpu", process)
    yield process
    stop(process)


@pytest.fixture
def gpu_queue():
    """synthesis-gpu on the test Redis, which no test worker consumes; emptied afterwards."""
    broker = dramatiq.get_broker()
    broker.flush(QUEUE_SYNTHESIS_GPU)
    yield broker
    broker.flush(QUEUE_SYNTHESIS_GPU)


def test_queue_depth_counts_messages_waiting_on_redis_with_no_worker(gpu_queue):
    from synthesis.tasks.actors import synthesis_job_run

    for job_id in (1, 2, 3):
        gpu_queue.enqueue(synthesis_job_run.message(0, job_id).copy(queue_name=QUEUE_SYNTHESIS_GPU))
    gpu_queue.enqueue(synthesis_job_run.message(0, 4).copy(queue_name=QUEUE_SYNTHESIS_GPU), delay=600_000)

    samples = _scrape()

    assert _value(samples, "parla_queue_depth", queue=QUEUE_SYNTHESIS_GPU, state="ready") == 3
    assert _value(samples, "parla_queue_depth", queue=QUEUE_SYNTHESIS_GPU, state="delayed") == 1
    assert _value(samples, "parla_queue_dead_letters", queue=QUEUE_SYNTHESIS_GPU) == 0


def test_job_gauges_count_queued_jobs_and_the_oldest_ones_age(api_client_for, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from synthesis.models import SynthesisJob

    monkeypatch.setattr("synthesis.jobs.create.enqueue", lambda job: None)  # no worker in this test
    tenant = TenantFactory()
    client = api_client_for(tenant)
    before = _scrape()

    for _ in range(2):
        assert client.post("/api/v1/jobs", {"text": "Waiting in line."}, format="json").status_code == 202
    SynthesisJob.objects.for_tenant(tenant).update(created_at=timezone.now() - timedelta(hours=1))
    after = _scrape()

    jobs = "parla_jobs"
    assert _value(after, jobs, queue="synthesis-cpu", status="queued") - \
        _value(before, jobs, queue="synthesis-cpu", status="queued") == 2
    assert _value(after, "parla_jobs_oldest_queued_age_seconds", queue="synthesis-cpu") >= 3600


@pytest.mark.django_db(transaction=True)
def test_a_job_run_by_a_real_worker_moves_the_engine_counters_and_job_gauges(api_client_for, cpu_worker):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    body = {"text": "Metrics count this sentence.", "format": "wav"}
    before = _scrape()

    first = client.post("/api/v1/speech", body, format="json")
    after_first = _scrape()
    second = client.post("/api/v1/speech", body, format="json")
    after_second = _scrape()

    assert (first.status_code, second.status_code) == (200, 200), cpu_worker.log_path.read_text()[-2000:]
    assert (first["X-Parla-Cache"], second["X-Parla-Cache"]) == ("miss", "hit")
    engine = {"engine": "piper"}
    processing = _value(after_first, "parla_synthesis_processing_seconds_total", **engine) - \
        _value(before, "parla_synthesis_processing_seconds_total", **engine)
    audio = _value(after_first, "parla_synthesis_audio_seconds_total", **engine) - \
        _value(before, "parla_synthesis_audio_seconds_total", **engine)
    assert processing > 0
    assert audio == pytest.approx(float(first["X-Parla-Audio-Seconds"]), abs=0.01)
    count = "parla_synthesis_job_processing_seconds_count"
    assert _value(after_first, count, **engine) - _value(before, count, **engine) == 1
    cache = "parla_synthesis_cache_requests_total"
    assert _value(after_first, cache, result="miss", **engine) - _value(before, cache, result="miss", **engine) == 1
    assert _value(after_second, cache, result="hit", **engine) - _value(after_first, cache, result="hit", **engine) == 1
    # A cache hit synthesises nothing: the real-time factor counts only real work.
    assert _value(after_second, count, **engine) == _value(after_first, count, **engine)
    succeeded = {"queue": "synthesis-cpu", "status": "succeeded"}
    assert _value(after_second, "parla_jobs", **succeeded) - _value(before, "parla_jobs", **succeeded) == 2


@pytest.mark.django_db(transaction=True)
def test_worker_heartbeats_appear_for_a_live_worker(cpu_worker):
    samples = _scrape()

    alive = {dict(labels)["queue"]: value for labels, value in _with_name(samples, "parla_workers_alive").items()
             if dict(labels)["host"] == socket.gethostname() and dict(labels)["device"] == "cpu"}
    ages = [value for labels, value in _with_name(samples, "parla_worker_heartbeat_age_seconds").items()
            if dict(labels)["host"] == socket.gethostname()]
    assert alive.get("synthesis-cpu", 0) >= 1
    assert ages and all(0 <= age <= 30 for age in ages)
