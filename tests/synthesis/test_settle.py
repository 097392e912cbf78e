"""The worker's one-statement path on PostgreSQL (synthesis.jobs.statements) against its ORM twin.

The statement is assembled from CTEs each table's owner exports next to its ORM function
(tenants.quotas.holds_close_ctes, analytics.services.usage_record_ctes, CacheDraft.insert_ctes).
Embedded mode (SQLite) takes the ORM path; here both run on the same PostgreSQL database, the
ORM one by switching statements.available() off, and must leave the same rows behind.
"""

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from analytics.models import UsageRecord, UsageRollupPending
from synthesis.jobs import commits, storage, synthesis_job_cancel, synthesis_job_execute
from synthesis.jobs import statements as settle
from synthesis.jobs.events import JobCharge
from synthesis.models import CachedAudio, SynthesisJob
from tenants.models import QuotaReservation, TenantQuota, UsagePeriod
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

TEXT = "The old lighthouse keeper climbed the narrow stairs at dawn."
JOB_FIELDS = ("status", "format", "content_type", "sample_rate", "audio_seconds", "size_bytes", "cache_hit",
              "model_version", "attempts", "holds_slot", "characters")


def _state(tenant, job_id: int) -> dict:
    job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
    reservation = QuotaReservation.objects.for_tenant(tenant).get(pk=job.reservation_id)
    period = UsagePeriod.objects.for_tenant(tenant).get()
    records = list(UsageRecord.objects.for_tenant(tenant).filter(job=job).values(
        "characters", "characters_billed", "audio_seconds", "cached", "voice_id", "engine", "model_version",
        "mode", "api_key_id", "user_id", "batch_id", "gpu_seconds"))
    # Piper samples its noise, so two renders differ in length: compare how the lengths agree.
    for record in records:
        assert record.pop("audio_seconds") == job.audio_seconds > 0
        assert record.pop("api_key_id") == job.api_key_id is not None  # each run has a tenant (and key) of its own
    cache = list(CachedAudio.objects.for_tenant(tenant).values(
        "voice_id", "engine", "model_version", "format", "content_type", "sample_rate", "size_bytes", "hits"))
    for entry in cache:
        entry["has_bytes"] = entry.pop("size_bytes") > 0
    return {
        "job": {name: getattr(job, name) for name in JOB_FIELDS if name not in ("audio_seconds", "size_bytes")},
        "sizes": job.size_bytes > 0 and job.audio_seconds > 0,
        "has_audio": bool(job.storage_path) and default_storage.exists(job.storage_path),
        "finished": job.finished_at is not None and job.processing_seconds is not None,
        "reservation": (reservation.state, reservation.characters, reservation.characters_settled,
                        reservation.closed_at is not None),
        "period": (period.characters_reserved, period.characters_used),
        "slots": TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight,
        "records": records,
        "pending": UsageRollupPending.objects.for_tenant(tenant).filter(record__job=job).count(),
        "cache": cache,
    }


def _run_twice(api_client_for, *, orm: bool, monkeypatch, body=None) -> list[dict]:
    """A miss, then the same request again (a hit): the state after each."""
    if orm:
        monkeypatch.setattr(settle, "available", lambda: False)
    tenant = TenantFactory()
    client = api_client_for(tenant)
    states = []
    for _ in range(2):
        job_id = client.post("/api/v1/jobs", body or {"text": TEXT, "format": "wav"}, format="json").json()["id"]
        synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)
        synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)  # a redelivered message changes nothing
        states.append(_state(tenant, job_id))
    return states


def test_the_one_statement_settlement_leaves_the_same_rows_as_the_orm_path(api_client_for, captured_jobs,
                                                                           monkeypatch):
    with monkeypatch.context() as patch:
        orm = _run_twice(api_client_for, orm=True, monkeypatch=patch)
    sql = _run_twice(api_client_for, orm=False, monkeypatch=monkeypatch)

    assert sql == orm
    miss, hit = sql
    assert miss["job"]["status"] == "succeeded" and miss["job"]["holds_slot"] is False
    assert miss["has_audio"] and miss["finished"]
    assert miss["reservation"] == ("settled", len(TEXT), len(TEXT), True)
    assert miss["records"][0]["characters_billed"] == len(TEXT) and miss["pending"] == 1
    assert hit["reservation"] == ("settled", len(TEXT), 0, True)  # a hit bills nothing
    assert hit["period"] == (0, len(TEXT)) and hit["slots"] == 0
    assert hit["cache"] == [{**miss["cache"][0], "hits": 1}]
    assert miss["sizes"] and hit["sizes"]


@pytest.mark.parametrize("orm", [False, True], ids=["sql", "orm"])
def test_a_job_cancelled_while_it_ran_is_not_charged_and_keeps_no_audio(api_client_for, captured_jobs,
                                                                        monkeypatch, orm,
                                                                        django_capture_on_commit_callbacks):
    if orm:
        monkeypatch.setattr(settle, "available", lambda: False)
    tenant = TenantFactory()
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]
    written = []
    real_store = storage.store_audio

    def cancel_then_store(job, data, extension):
        # The tenant cancels while the engine runs; the worker then tries to settle.
        synthesis_job_cancel(tenant=tenant, job=job)
        written.append(real_store(job, data, extension))
        return written[-1]

    monkeypatch.setattr(storage, "store_audio", cancel_then_store)
    with django_capture_on_commit_callbacks(execute=True):  # the files go once the cancel commits
        synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)

    job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
    assert job.status == "cancelled" and not job.storage_path
    assert written and not default_storage.exists(written[0])
    assert QuotaReservation.objects.for_tenant(tenant).get(pk=job.reservation_id).state == "released"
    assert UsagePeriod.objects.for_tenant(tenant).values_list("characters_reserved", "characters_used").get() == (0, 0)
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
    assert not UsageRecord.objects.for_tenant(tenant).exists()
    assert not CachedAudio.objects.for_tenant(tenant).exists()
    cache_files = default_storage.listdir(f"tenants/{tenant.pk}/cache")[0] if default_storage.exists(
        f"tenants/{tenant.pk}/cache") else []
    assert all(not default_storage.listdir(f"tenants/{tenant.pk}/cache/{folder}")[1] for folder in cache_files)


def test_another_tenants_job_id_settles_nothing(api_client_for, captured_jobs):
    owner, other = TenantFactory(), TenantFactory()
    job_id = api_client_for(owner).post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]

    assert settle.job_take(tenant_id=other.pk, job_id=job_id, worker_id="w", now=None, max_attempts=3) is None
    job = SynthesisJob.objects.for_tenant(owner).get(pk=job_id)
    settled = settle.job_settle(
        tenant_id=other.pk, job_id=job_id, now=timezone.now(), result=dict.fromkeys(
            ("storage_path", "format", "content_type", "sample_rate", "audio_seconds", "size_bytes", "cache_hit",
             "processing_seconds", "model_version")),
        charge=JobCharge(job=job, characters_billed=0, cached=False, processing_seconds=0.0, model_version="",
                         at=timezone.now()),
        cache=None)

    assert settled is None
    job = SynthesisJob.objects.for_tenant(owner).get(pk=job_id)
    assert (job.status, job.attempts, job.holds_slot) == ("queued", 0, True)
    assert not UsageRecord.objects.exists()


def _synchronous_commit() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_job_transaction_commits_without_waiting_for_the_log_flush_and_only_itself(settings):
    settings.PARLA_ASYNC_JOB_COMMITS = True
    with commits.job_transaction():
        inside = _synchronous_commit()
    settings.PARLA_ASYNC_JOB_COMMITS = False
    with commits.job_transaction():
        durable = _synchronous_commit()

    assert (inside, _synchronous_commit(), durable) == ("off", "on", "on")
