"""The plan's audio length per request: pauses cost no characters, so characters alone do not
bound a request's work. A request whose audio would pass the limit is refused before it is
queued; the worker stops a render that passes it anyway."""

import pytest

from analytics.models import UsageRecord
from synthesis.jobs import synthesis_job_execute
from synthesis.models import SynthesisJob
from tenants.models import QuotaReservation, TenantQuota, UsagePeriod
from tests.tenants.factories import PlanFactory, TenantFactory

pytestmark = pytest.mark.django_db

# 2,400 characters that would render 6.7 hours of silence.
BREAKS = "<speak>" + 'a<break time="10s"/>' * 2400 + "</speak>"


def _tenant(**limits):
    return TenantFactory(plan=PlanFactory(request_characters=60_000, monthly_characters=1_000_000, **limits))


def _nothing_held(tenant) -> bool:
    periods = UsagePeriod.objects.for_tenant(tenant).values_list("characters_reserved", "characters_used")
    return all(row == (0, 0) for row in periods) and not QuotaReservation.objects.for_tenant(tenant).exists()


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/speech", "/api/v1/speech/stream"])
def test_thousands_of_breaks_are_refused_before_queueing(api_client_for, captured_jobs, path):
    tenant = _tenant(max_audio_seconds_per_request=3_600)

    response = api_client_for(tenant).post(path, {"ssml": BREAKS}, format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "audio_too_long_requested"
    assert body["extra"]["limit_seconds"] == 3_600
    assert body["extra"]["estimated_seconds"] >= 24_000
    assert "3,600 seconds" in body["message"]
    assert captured_jobs() == [] and not SynthesisJob.objects.for_tenant(tenant).exists()
    assert _nothing_held(tenant)


def test_the_estimate_counts_speed_and_prosody(api_client_for, captured_jobs):
    tenant = _tenant(max_audio_seconds_per_request=60)
    client = api_client_for(tenant)
    # Ten 5-second pauses and a little speech: under a minute at any speed.
    fits = "<speak>" + 'Hello there.<break time="5s"/>' * 10 + "</speak>"
    # 2,000 characters take at least 80 s at speed 1 (Parla's fastest reading is 25 a second):
    # 40 s at speed 2, 160 s at half speed, 80 s at speed 2 under a half-rate prosody.
    words = "Word " * 400

    assert client.post("/api/v1/jobs", {"ssml": fits}, format="json").status_code == 202
    assert client.post("/api/v1/jobs", {"text": words, "speed": 2.0}, format="json").status_code == 202
    assert client.post("/api/v1/jobs", {"text": words, "speed": 0.5}, format="json").json()["code"] == (
        "audio_too_long_requested")
    slow = f'<speak><prosody rate="50%">{words}</prosody></speak>'
    assert client.post("/api/v1/jobs", {"ssml": slow, "speed": 2.0}, format="json").json()["code"] == (
        "audio_too_long_requested")


def test_a_batch_item_over_the_limit_refuses_the_batch(api_client_for):
    tenant = _tenant(max_audio_seconds_per_request=3_600)

    response = api_client_for(tenant).post(
        "/api/v1/batches", {"items": [{"text": "Fine."}, {"ssml": BREAKS}], "format": "wav"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "audio_too_long_requested"
    assert response.json()["extra"]["item"] == 2
    assert not SynthesisJob.objects.for_tenant(tenant).exists()


def test_the_worker_stops_a_render_that_passes_the_limit_and_refunds_it(api_client_for, captured_jobs):
    # The estimate errs short (fast reading); this text's real reading is longer than 3 s.
    tenant = _tenant(max_audio_seconds_per_request=3)
    text = "One sentence here. Another one there. A third to be sure."
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": text}, format="json").json()["id"]

    synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)

    job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
    assert (job.status, job.error_code, job.storage_path) == ("failed", "audio_too_long_requested", "")
    assert "3 seconds" in job.error_message
    assert QuotaReservation.objects.for_tenant(tenant).get().state == "released"
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
    assert not UsageRecord.objects.for_tenant(tenant).exists()


def test_default_plans_limit_audio_per_request():
    from tenants.models import Plan

    limits = dict(Plan.objects.values_list("slug", "max_audio_seconds_per_request"))

    assert limits["free"] < 3_600
    assert limits["starter"] == limits["pro"] == limits["enterprise"] == 3_600
