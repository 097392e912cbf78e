"""Synthesis jobs in one process: the API writes the row and holds quota; the actor body
(called directly, as Dramatiq would) renders, stores, settles and records usage."""

import io

import pytest
import soundfile as sf

from analytics.models import UsageRecord
from synthesis.jobs import synthesis_job_execute
from synthesis.models import CachedAudio, SynthesisJob
from tenants.models import QuotaReservation, TenantQuota, UsagePeriod
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

TEXT = "Your order ships on 3 May."


@pytest.fixture
def no_wait(settings):
    settings.PARLA_SYNC_WAIT_SECONDS = 0.05


def _run(job_id: int) -> SynthesisJob:
    job = SynthesisJob.objects.get(pk=job_id)
    synthesis_job_execute(tenant_id=job.tenant_id, job_id=job.pk)
    job.refresh_from_db()
    return job


def test_async_job_holds_quota_and_a_slot_until_the_worker_finishes(api_client_for, captured_jobs):
    tenant = TenantFactory()
    client = api_client_for(tenant)

    response = client.post("/api/v1/jobs", {"text": TEXT, "format": "wav"}, format="json")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued"
    assert body["characters"] == len(TEXT)
    assert response["Location"] == f"/api/v1/jobs/{body['id']}"
    assert captured_jobs() == [body["id"]]
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_reserved, period.characters_used) == (len(TEXT), 0)
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 1

    job = _run(body["id"])

    assert job.status == "succeeded"
    period.refresh_from_db()
    assert (period.characters_reserved, period.characters_used) == (0, len(TEXT))
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
    usage = UsageRecord.objects.for_tenant(tenant).get()
    assert (usage.job_id, usage.characters_billed, usage.cached) == (job.pk, len(TEXT), False)
    audio = client.get(f"/api/v1/jobs/{job.pk}/audio")
    assert audio.status_code == 200
    assert audio["Content-Type"] == "audio/wav"
    samples, rate = sf.read(io.BytesIO(b"".join(audio.streaming_content)))
    assert len(samples) / rate == pytest.approx(job.audio_seconds, abs=0.01)
    assert audio["X-Parla-Cache"] == "miss"


def test_job_run_twice_yields_one_audio_file_and_one_usage_record(api_client_for, captured_jobs):
    tenant = TenantFactory()
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]

    first = _run(job_id)
    path = first.storage_path
    second = _run(job_id)  # The message delivered again.

    assert second.storage_path == path
    assert second.attempts == 1
    assert UsageRecord.objects.for_tenant(tenant).count() == 1
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == len(TEXT)


def test_identical_request_is_served_from_cache_and_not_charged(api_client_for, captured_jobs):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    first = _run(client.post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"])

    second = _run(client.post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"])

    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert UsageRecord.objects.for_tenant(tenant).get(job=second).characters_billed == 0
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == len(TEXT)


def test_sync_speech_without_a_worker_answers_202_with_the_job(api_client_for, no_wait, captured_jobs):
    tenant = TenantFactory()

    response = api_client_for(tenant).post("/api/v1/speech", {"text": TEXT}, format="json")

    assert response.status_code == 202
    assert response.json()["waiting_for"] == "worker"
    assert response["X-Parla-Job-Id"] == str(response.json()["id"])


def test_permanent_failure_refunds_the_reservation_and_frees_the_slot(api_client_for, captured_jobs):
    tenant = TenantFactory()
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]
    # The voice disappears between the request and the worker (an operator removed it).
    SynthesisJob.objects.for_tenant(tenant).filter(pk=job_id).update(voice_id="piper:no-such-voice")

    job = _run(job_id)

    assert job.status == "failed"
    assert job.error_code == "unknown_voice"
    assert QuotaReservation.objects.for_tenant(tenant).get().state == "released"
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_reserved, period.characters_used) == (0, 0)
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
    assert not UsageRecord.objects.for_tenant(tenant).exists()


def test_delete_job_removes_its_audio_but_keeps_the_record(api_client_for, captured_jobs):
    from django.core.files.storage import default_storage

    tenant = TenantFactory()
    client = api_client_for(tenant)
    job = _run(client.post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"])
    path = job.storage_path

    response = client.delete(f"/api/v1/jobs/{job.pk}")

    assert response.status_code == 204
    assert not default_storage.exists(path)
    detail = client.get(f"/api/v1/jobs/{job.pk}").json()
    assert (detail["status"], detail["audio_available"]) == ("succeeded", False)
    assert client.get(f"/api/v1/jobs/{job.pk}/audio").status_code == 404
    assert UsageRecord.objects.for_tenant(tenant).count() == 1


def test_delete_queued_job_cancels_it_and_refunds(api_client_for, captured_jobs):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    job_id = client.post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]

    client.delete(f"/api/v1/jobs/{job_id}")
    job = _run(job_id)  # The message still arrives; the worker leaves a cancelled job alone.

    assert job.status == "cancelled"
    assert job.storage_path == ""
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_reserved == 0
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0


def test_voice_preview_is_made_once_and_then_served_as_is(api_client_for, captured_jobs, settings):
    from tests.voices.factories import VoiceProfileFactory

    settings.PARLA_SYNC_WAIT_SECONDS = 0.05
    profile = VoiceProfileFactory(status="ready")
    client = api_client_for(profile.tenant)

    pending = client.get(f"/api/v1/voices/{profile.pk}/preview")
    _run(pending.json()["id"])
    first = client.get(f"/api/v1/voices/{profile.pk}/preview", HTTP_ACCEPT="audio/*")
    again = client.get(f"/api/v1/voices/{profile.pk}/preview")

    assert pending.status_code == 202
    assert first.status_code == 200
    assert first["Content-Type"] == "audio/mpeg"
    assert again["X-Parla-Job-Id"] == first["X-Parla-Job-Id"] == str(pending.json()["id"])
    assert captured_jobs() == [pending.json()["id"]]
    # Previews are free and stay out of the tenant's job history.
    assert UsagePeriod.objects.for_tenant(profile.tenant).first() is None or \
        UsagePeriod.objects.for_tenant(profile.tenant).get().characters_used == 0
    assert client.get("/api/v1/jobs").json()["results"] == []


def test_voice_preview_of_a_voice_still_enrolling_is_409(api_client_for):
    from tests.voices.factories import VoiceProfileFactory

    profile = VoiceProfileFactory(status="enrolling", kind="matched", engine="kokoro", base_voice_id="")

    response = api_client_for(profile.tenant).get(f"/api/v1/voices/{profile.pk}/preview")

    assert (response.status_code, response.json()["code"]) == (409, "voice_not_ready")


def test_job_is_enqueued_only_after_its_transaction_commits(api_client_for, django_capture_on_commit_callbacks,
                                                            monkeypatch):
    from synthesis.tasks.actors import synthesis_job_run

    sent = []
    monkeypatch.setattr(synthesis_job_run.broker, "enqueue", lambda message, **kw: sent.append(message))
    tenant = TenantFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]
        assert sent == []  # The row is not committed yet: a worker could not see it.
    for callback in callbacks:
        callback()

    assert [(m.actor_name, m.queue_name, m.args) for m in sent] == [
        ("synthesis_job_run", "synthesis-cpu", (tenant.pk, job_id))]


def test_transient_failures_retry_a_bounded_number_of_times_then_refund(api_client_for, captured_jobs, monkeypatch):
    # An engine crash cannot be provoked on demand with a real model; a render that raises
    # stands in for one (a transient fault: not an input error).
    def crash(**kwargs):
        raise RuntimeError("onnxruntime: device lost")

    monkeypatch.setattr("synthesis.render.render", crash)
    tenant = TenantFactory()
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]
    attempts = []

    for _ in range(3):  # Dramatiq delivers the message again after each raised error.
        try:
            synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)
            attempts.append("returned")
        except RuntimeError:
            attempts.append("raised")

    job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
    assert attempts == ["raised", "raised", "returned"]
    assert (job.status, job.error_code, job.attempts) == ("failed", "synthesis_failed", 3)
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_reserved, period.characters_used) == (0, 0)
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0


def test_a_cache_that_cannot_be_written_leaves_the_job_succeeded_and_billed(
        api_client_for, captured_jobs, monkeypatch, caplog):
    def full(self):
        raise OSError("No space left on device")

    monkeypatch.setattr("synthesis.cache.CacheDraft.write_file", full)
    tenant = TenantFactory()
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]

    job = _run(job_id)  # returns: nothing for Dramatiq to retry

    assert (job.status, job.cache_hit) == ("succeeded", False)
    assert UsageRecord.objects.for_tenant(tenant).get().characters_billed == len(TEXT)
    assert not CachedAudio.objects.for_tenant(tenant).exists()
    assert "synthesis_job_run.cache_store_failed" in caplog.text


def test_recovery_requeues_a_job_whose_message_was_lost(api_client_for, monkeypatch, settings):
    import datetime as dt

    from django.utils import timezone

    from config.runtime.upkeep import broker_state_age
    from synthesis.jobs import synthesis_jobs_recover_all_tenants

    broker_state_age()  # The broker's state is known from here on (nothing was lost).
    sent = []
    monkeypatch.setattr("synthesis.jobs.create.enqueue", lambda job: sent.append(job.pk))
    tenant = TenantFactory()
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]
    fresh = synthesis_jobs_recover_all_tenants()
    SynthesisJob.objects.for_tenant(tenant).filter(pk=job_id).update(
        enqueued_at=timezone.now() - dt.timedelta(seconds=settings.PARLA_JOB_REQUEUE_SECONDS + 1))

    stale = synthesis_jobs_recover_all_tenants()

    assert (fresh, stale) == (0, 1)
    assert sent == [job_id, job_id]  # Created, then sent again.
    assert _run(job_id).status == "succeeded"


def test_recovery_resends_every_queued_job_when_the_broker_lost_its_messages(api_client_for, monkeypatch):
    import dramatiq

    from config.runtime.upkeep import broker_state_age
    from synthesis.jobs import synthesis_jobs_recover_all_tenants

    broker_state_age()
    sent = []
    monkeypatch.setattr("synthesis.jobs.create.enqueue", lambda job: sent.append(job.pk))
    tenant = TenantFactory()
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]
    broker = dramatiq.get_broker()
    broker.client.delete(f"{broker.namespace}:__parla_state_since__")  # What a Redis restart does.

    recovered = synthesis_jobs_recover_all_tenants()

    assert recovered == 1
    assert sent.count(job_id) == 2  # Created, then sent again at once (not after the timeout).
    assert broker_state_age() > 0  # Known again from now on.


def test_a_request_waiting_on_its_job_learns_the_result_from_the_done_event_without_a_query(
        api_client_for, captured_jobs, django_assert_num_queries):
    from synthesis.api.responses import wait_for_job
    from synthesis.jobs import DONE_FIELDS

    tenant = TenantFactory()
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]
    waiting = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)  # as the web request created it
    synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)  # the worker publishes "done"

    with django_assert_num_queries(0):
        waited = wait_for_job(waiting, timeout=5)

    stored = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
    assert waited.status == stored.status == "succeeded"
    assert [getattr(waited, name) for name in DONE_FIELDS] == [getattr(stored, name) for name in DONE_FIELDS]
    assert waited.audio_available
