"""One finished job, one usage record: redelivered messages, replays and crashes included.

The actor body runs here as Dramatiq would run it (called directly), with the real Piper
engine; the flow through a real broker and worker process is in test_worker_flow.py.
"""

import pytest
from django.core.files.storage import default_storage
from django.db import transaction

from analytics.models import UsageDaily, UsageFailure, UsageRecord, UsageRollupPending
from analytics.rollups import usage_rollup_run
from analytics.selectors import usage_report
from synthesis.jobs import statements as settle
from synthesis.jobs import synthesis_job_execute
from synthesis.models import CachedAudio, SynthesisJob
from synthesis.tasks.actors import synthesis_job_run
from tenants.models import UsagePeriod
from tests.synthesis.conftest import captured_jobs  # noqa: F401  (jobs are run here, not sent)
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

TEXT = "The ledger counts every job once."


def _job(api_client_for, tenant, **body) -> int:
    response = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT, "format": "wav", **body}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def test_replaying_the_job_message_yields_one_usage_record(api_client_for, captured_jobs):
    tenant = TenantFactory()
    job_id = _job(api_client_for, tenant)

    synthesis_job_run(tenant.pk, job_id)
    synthesis_job_run(tenant.pk, job_id)  # The broker delivered the message again.
    synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)

    record = UsageRecord.objects.for_tenant(tenant).get()
    job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
    assert (record.job_id, record.characters_billed, record.audio_seconds) == (job_id, len(TEXT), job.audio_seconds)
    assert record.model_version == job.model_version != ""
    assert record.gpu_seconds is None
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == len(TEXT)


def test_rollup_of_a_replayed_job_counts_it_once(api_client_for, captured_jobs):
    tenant = TenantFactory()
    job_id = _job(api_client_for, tenant)
    synthesis_job_run(tenant.pk, job_id)
    synthesis_job_run(tenant.pk, job_id)

    usage_rollup_run(tenant_id=tenant.pk)
    usage_rollup_run(tenant_id=tenant.pk)  # The rollup message delivered twice.

    daily = UsageDaily.objects.for_tenant(tenant).get()
    assert (daily.requests, daily.characters_billed) == (1, len(TEXT))
    assert not UsageRollupPending.objects.for_tenant(tenant).exists()


@pytest.mark.parametrize("path", ["one statement", "orm"])
def test_crash_between_audio_write_and_ledger_write_leaves_no_record_and_the_retry_writes_one(
    api_client_for, captured_jobs, monkeypatch, path
):
    tenant = TenantFactory()
    job_id = _job(api_client_for, tenant)
    real_settle = settle.job_settle

    def crash_in_statement(**kwargs):
        # PostgreSQL settles in one statement: the worker dies after it ran, before it committed.
        with transaction.atomic():
            real_settle(**kwargs)
            raise RuntimeError("worker killed before the settling statement committed")

    def crash_at_ledger(charge):
        raise RuntimeError("worker killed inside the finishing transaction")

    # The audio is stored before the settlement; the crash comes inside it.
    with monkeypatch.context() as patch:
        if path == "orm":
            patch.setattr(settle, "available", lambda: False)
            patch.setattr("synthesis.jobs.settle.job_charged", crash_at_ledger)
        else:
            patch.setattr(settle, "job_settle", crash_in_statement)
        with pytest.raises(RuntimeError):
            synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)
    if path == "orm":
        monkeypatch.setattr(settle, "available", lambda: False)

    job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
    stored = default_storage.listdir(f"tenants/{tenant.pk}/jobs")[1]
    assert stored == [f"{job_id}.wav"]
    assert job.status == "queued" and job.storage_path == ""  # put back for the retry
    assert not UsageRecord.objects.for_tenant(tenant).exists()
    assert not UsageRollupPending.objects.for_tenant(tenant).exists()
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_reserved, period.characters_used) == (len(TEXT), 0)

    # Dramatiq delivers the message again (and perhaps once more).
    synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)
    synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)

    job.refresh_from_db()
    record = UsageRecord.objects.for_tenant(tenant).get()
    assert job.status == "succeeded"
    assert record.job_id == job_id
    assert default_storage.listdir(f"tenants/{tenant.pk}/jobs")[1] == [f"{job_id}.wav"]
    period.refresh_from_db()
    # The hold is settled once, and in full: the cache entry is written only with the settlement,
    # so the retry does not find its own first attempt's audio there and bill nothing.
    assert (record.cached, record.characters_billed) == (False, len(TEXT))
    assert (period.characters_reserved, period.characters_used) == (0, len(TEXT))
    assert CachedAudio.objects.for_tenant(tenant).count() == 1  # written once, by the run that settled
    assert UsageRollupPending.objects.for_tenant(tenant).count() == 1


def test_failed_job_is_counted_as_an_error_and_never_billed(api_client_for, captured_jobs):
    tenant = TenantFactory()
    job_id = _job(api_client_for, tenant)
    # The voice disappears between the request and the worker (an operator removed it).
    SynthesisJob.objects.for_tenant(tenant).filter(pk=job_id).update(voice_id="piper:no-such-voice")

    synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)
    synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)

    failure = UsageFailure.objects.for_tenant(tenant).get()
    assert (failure.job_id, failure.error_code) == (job_id, "unknown_voice")
    assert not UsageRecord.objects.for_tenant(tenant).exists()
    job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
    day = job.finished_at.astimezone(tenant.tzinfo).date()
    totals = usage_report(tenant=tenant, start=day, end=day).totals
    assert (totals.errors, totals.requests, totals.characters_billed) == (1, 0, 0)


def test_job_made_in_the_dashboard_is_recorded_with_its_member(client, captured_jobs):
    from tests.tenants.factories import MembershipFactory

    membership = MembershipFactory(role="member")
    client.force_login(membership.user)
    response = client.post("/app/speak/", {"input_mode": "text", "text": TEXT, "voice": "piper:en_US-joe-medium",
                                           "format": "wav", "sample_rate": "", "speed": "1", "pitch": "0",
                                           "loudness": ""})
    assert response.status_code == 302
    job = SynthesisJob.objects.for_tenant(membership.tenant).get()

    synthesis_job_execute(tenant_id=job.tenant_id, job_id=job.pk)

    record = UsageRecord.objects.for_tenant(membership.tenant).get()
    assert (job.created_by_id, record.user_id, record.api_key_id) == (membership.user_id, membership.user_id, None)
