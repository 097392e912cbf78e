"""Writes to the usage ledger. Called by synthesis inside the transaction that finishes a job.

    usage_record_create(tenant=job.tenant_id, job=locked_job, characters_billed=..., ...)

Each ledger row is written with its UsageRollupPending row; after commit the tenant's rollup
run is enqueued (see analytics.rollups for why that is exact under retries and races).
"""

import logging
import math

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from analytics.models import EnrollmentUsage, UsageFailure, UsageRecord, UsageRollupPending
from synthesis.models import SynthesisJob
from tenants.models import Tenant
from voices.models import VoiceEnrollment

logger = logging.getLogger(__name__)

def usage_rollup_soon(tenant_id: int) -> None:
    """Schedule the tenant's rollup PARLA_USAGE_ROLLUP_DELAY_SECONDS from now, once per window.

    Records written meanwhile are taken by that one run, so a 10,000-item batch costs a few
    rollup messages, not 10,000 (reports count pending rows already, so nothing waits on it).
    A negative delay leaves rollups to the workers' upkeep and `manage.py usage_rollup`.
    """
    from analytics.tasks.actors import usage_rollup_run as usage_rollup_run_actor

    delay = settings.PARLA_USAGE_ROLLUP_DELAY_SECONDS
    if delay < 0:
        return

    def send() -> None:
        try:
            if cache.add(f"analytics:rollup-queued:{tenant_id}", 1, timeout=max(1, math.ceil(delay))):
                usage_rollup_run_actor.send_with_options(args=(tenant_id,), delay=round(delay * 1000) or None)
        except Exception:  # noqa: BLE001  the job is done either way; the next run takes the rows
            logger.warning("usage_rollup.enqueue_failed", extra={"tenant_id": tenant_id}, exc_info=True)

    transaction.on_commit(send)


def usage_record_create(
    *,
    tenant: Tenant | int,
    job: SynthesisJob,
    characters_billed: int,
    cached: bool,
    processing_seconds: float,
    gpu_seconds: float | None = None,
    model_version: str = "",
    checked: bool = False,
) -> UsageRecord:
    """The ledger row of a job that succeeded. Call with the job row locked, in the
    transaction that settles its quota; a second call for the same job returns the first row.
    `checked`: the caller saw the locked job unfinished, so it has no record yet (one query
    less; the unique constraint still stands behind it)."""
    tenant_id = getattr(tenant, "pk", tenant)
    # No savepoint: inside the caller's transaction a failure here must undo it all anyway.
    with transaction.atomic(savepoint=False):
        existing = None if checked else UsageRecord.objects.for_tenant(tenant_id).filter(job=job).first()
        if existing is not None:
            return existing
        record = UsageRecord(
            tenant_id=tenant_id, job=job, api_key_id=job.api_key_id, user_id=job.created_by_id,
            batch_id=job.batch_id, voice_id=job.voice_id, engine=job.engine,
            model_version=model_version or job.model_version, mode=job.mode, characters=job.characters,
            characters_billed=characters_billed, audio_seconds=job.audio_seconds or 0.0, cached=cached,
            processing_seconds=processing_seconds, gpu_seconds=gpu_seconds,
        )
        record.save()
        UsageRollupPending.objects.create(tenant_id=tenant_id, record=record)
    usage_rollup_soon(tenant_id)
    return record


def usage_record_ctes(*, source: str, tenant_id: int, characters_billed: int, cached: bool,
                      processing_seconds: float, gpu_seconds: float | None, model_version: str,
                      now) -> tuple[str, dict]:
    """PostgreSQL: what usage_record_create() writes (the ledger row and its rollup marker), as
    CTEs (`usage_record`, `usage_pending`) for a caller's one statement, for the job row of its
    CTE `source` (columns id, api_key_id, created_by_id, batch_id, voice_id, engine, mode,
    characters, audio_seconds). The caller asks for the rollup after it commits
    (usage_rollup_soon). Returns (the CTEs, their parameters); tests/synthesis/test_settle.py
    holds them to the same rows as usage_record_create()."""
    sql = f"""
usage_record AS (
    INSERT INTO {UsageRecord._meta.db_table} (
        tenant_id, job_id, api_key_id, user_id, batch_id, voice_id, engine, model_version, mode, characters,
        characters_billed, audio_seconds, cached, processing_seconds, gpu_seconds, created_at)
    SELECT %(usage_tenant_id)s, {source}.id, {source}.api_key_id, {source}.created_by_id, {source}.batch_id,
           {source}.voice_id, {source}.engine, %(usage_model_version)s, {source}.mode, {source}.characters,
           %(usage_billed)s, COALESCE({source}.audio_seconds, 0), %(usage_cached)s, %(usage_processing_seconds)s,
           %(usage_gpu_seconds)s, %(usage_now)s
    FROM {source}
    RETURNING id
), usage_pending AS (
    INSERT INTO {UsageRollupPending._meta.db_table} (tenant_id, record_id)
    SELECT %(usage_tenant_id)s, usage_record.id FROM usage_record
    RETURNING id
)"""
    return sql, {
        "usage_tenant_id": tenant_id, "usage_model_version": model_version, "usage_billed": characters_billed,
        "usage_cached": cached, "usage_processing_seconds": processing_seconds, "usage_gpu_seconds": gpu_seconds,
        "usage_now": now,
    }


def usage_failure_record(*, tenant: Tenant | int, job: SynthesisJob) -> UsageFailure:
    """Count one failure of a job (no charge). Call in the transaction that marks it failed."""
    tenant_id = getattr(tenant, "pk", tenant)
    with transaction.atomic():
        failure = UsageFailure(tenant_id=tenant_id, job=job, api_key_id=job.api_key_id, voice_id=job.voice_id,
                               engine=job.engine, mode=job.mode, error_code=job.error_code[:64])
        failure.save()
        UsageRollupPending.objects.create(tenant_id=tenant_id, failure=failure)
    usage_rollup_soon(tenant_id)
    return failure


def enrollment_usage_record(*, tenant: Tenant | int, enrollment: VoiceEnrollment) -> EnrollmentUsage | None:
    """The ledger row of an enrollment that ended after a worker ran it (None for one that never
    ran: superseded or cancelled while queued, which did no work). Called by voices'
    enrollment_finished hook inside the transaction that ends it, with its row locked; a second
    call for the same enrollment returns the first row."""
    tenant_id = getattr(tenant, "pk", tenant)
    if enrollment.attempts == 0:
        return None
    with transaction.atomic(savepoint=False):
        existing = EnrollmentUsage.objects.for_tenant(tenant_id).filter(enrollment=enrollment).first()
        if existing is not None:
            return existing
        usage = EnrollmentUsage(
            tenant_id=tenant_id, enrollment=enrollment, api_key_id=enrollment.api_key_id,
            user_id=enrollment.created_by_id, voice_id=enrollment.voice_id, engine=enrollment.engine,
            kind=enrollment.kind, outcome=enrollment.status, attempts=enrollment.attempts,
            processing_seconds=round(enrollment.processing_seconds, 3),
        )
        usage.save()
    return usage
