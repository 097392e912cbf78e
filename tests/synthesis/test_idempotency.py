"""Idempotency-Key on the POSTs that create work."""

import datetime as dt

import pytest
from django.utils import timezone

from synthesis.jobs import synthesis_job_execute
from synthesis.models import SynthesisJob
from tenants.models import IdempotencyRecord, QuotaReservation
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

BODY = {"text": "Charge me once.", "format": "wav"}


def test_same_key_and_body_returns_the_first_job_without_new_work(api_client_for, captured_jobs):
    tenant = TenantFactory()
    client = api_client_for(tenant)

    first = client.post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    second = client.post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-1")

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json()["id"] == first.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert SynthesisJob.objects.for_tenant(tenant).count() == 1
    assert QuotaReservation.objects.for_tenant(tenant).count() == 1
    assert captured_jobs() == [first.json()["id"]]


def test_same_key_with_another_body_is_422(api_client_for, captured_jobs):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    client.post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-2")

    response = client.post("/api/v1/jobs", {**BODY, "text": "Something else."}, format="json",
                           HTTP_IDEMPOTENCY_KEY="order-2")

    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")
    assert SynthesisJob.objects.for_tenant(tenant).count() == 1


def test_same_key_on_another_endpoint_is_422(api_client_for, captured_jobs, settings):
    settings.PARLA_SYNC_WAIT_SECONDS = 0.05
    tenant = TenantFactory()
    client = api_client_for(tenant)
    client.post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-3")

    response = client.post("/api/v1/speech", BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-3")

    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")


def test_same_key_while_the_first_is_in_flight_is_409(api_client_for, captured_jobs):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    # The first request with this body has claimed the key and is still being answered.
    IdempotencyRecord.objects.create(
        tenant=tenant, key="order-4", fingerprint=_body_fingerprint(), expires_at=timezone.now() + dt.timedelta(hours=1)
    )

    response = client.post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-4")

    assert (response.status_code, response.json()["code"]) == (409, "idempotency_in_progress")
    assert not SynthesisJob.objects.for_tenant(tenant).exists()


def _body_fingerprint() -> str:
    """The fingerprint the first request (same body, same path) recorded."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from tenants.idempotency import _fingerprint

    return _fingerprint(Request(APIRequestFactory().post("/api/v1/jobs", BODY, format="json")))


def test_keys_are_per_tenant(api_client_for, captured_jobs):
    one, two = TenantFactory(), TenantFactory()

    first = api_client_for(one).post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    second = api_client_for(two).post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert first.json()["id"] != second.json()["id"]
    assert SynthesisJob.objects.for_tenant(two).count() == 1


def test_expired_key_starts_new_work(api_client_for, captured_jobs):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    first = client.post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.for_tenant(tenant).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    second = client.post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")

    assert second.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in second


def test_refused_request_frees_its_key(api_client_for, captured_jobs):
    tenant = TenantFactory()
    client = api_client_for(tenant)

    refused = client.post("/api/v1/jobs", {"text": ""}, format="json", HTTP_IDEMPOTENCY_KEY="retry-me")
    accepted = client.post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="retry-me")

    assert (refused.status_code, accepted.status_code) == (400, 202)


def test_sync_speech_replay_serves_the_first_audio_without_a_new_charge(api_client_for, captured_jobs, settings):
    settings.PARLA_SYNC_WAIT_SECONDS = 0.05
    tenant = TenantFactory()
    client = api_client_for(tenant)
    first = client.post("/api/v1/speech", BODY, format="json", HTTP_IDEMPOTENCY_KEY="speak-1")
    assert first.status_code == 202  # No worker here: the job is still queued.
    synthesis_job_execute(tenant_id=tenant.pk, job_id=first.json()["id"])

    replay = client.post("/api/v1/speech", BODY, format="json", HTTP_IDEMPOTENCY_KEY="speak-1")

    assert replay.status_code == 200
    assert replay["X-Parla-Job-Id"] == str(first.json()["id"])
    assert b"".join(replay.streaming_content)[:4] == b"RIFF"
    assert SynthesisJob.objects.for_tenant(tenant).count() == 1


def test_idempotency_key_too_long_is_refused(api_client_for, captured_jobs):
    tenant = TenantFactory()

    response = api_client_for(tenant).post("/api/v1/jobs", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert not SynthesisJob.objects.for_tenant(tenant).exists()
