"""A worker's database writes for one job, in as few round trips as PostgreSQL allows.

A 60-character request synthesises in about 0.2 s, so the dozen statements around it (take
the job; settle it: job row, reservation, usage period, job slot, usage record, rollup marker,
cache entry) are a large share of its latency and of the CPU a busy host spends per request.
On PostgreSQL each of the two steps is one statement: `job_take` one conditional UPDATE ...
RETURNING, `job_settle` one statement of data-modifying CTEs, atomic on its own and taking the
job row's lock first, as the ORM path does. Other databases (SQLite in embedded mode) take
the ORM path in synthesis.jobs.settle; tests/synthesis/test_settle.py holds the two to the same
results.

Every statement names the tenant next to the id, like every tenant-scoped query.
"""

import dataclasses
import datetime as dt
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction

from analytics.models import UsageRecord, UsageRollupPending
from synthesis.models import CachedAudio, SynthesisJob
from tenants.models import QuotaReservation, TenantQuota, UsagePeriod


def available() -> bool:
    return connection.vendor == "postgresql"


def _relaxed() -> bool:
    return available() and settings.PARLA_ASYNC_JOB_COMMITS


# Evaluated inside a statement, this makes the statement's transaction commit without waiting
# for the write-ahead log flush (see job_transaction), and nothing after it: a statement run
# on its own is its own transaction, so the job steps that are one statement need no BEGIN,
# SET and COMMIT round trips around them.
_RELAXED_COMMIT = "set_config('synchronous_commit', 'off', true)"


def relaxed_commit_sql() -> str:
    """The expression above with PARLA_ASYNC_JOB_COMMITS on PostgreSQL, else NULL."""
    return _RELAXED_COMMIT if _relaxed() else "NULL"


@contextmanager
def job_transaction():
    """The transaction that creates a job with its hold. With PARLA_ASYNC_JOB_COMMITS on
    PostgreSQL its commit does not wait for the write-ahead log to reach the disk; the later
    steps, each a single statement (take, settle, count a cache hit), relax their own commit
    with relaxed_commit_sql(). A request makes three such commits (create, take, settle); a
    flush costs up to 4 ms on this development machine's disk (back to back) and about 0.5 ms
    in the overhead benchmark, more on network disks.

    What a database crash can lose is the last fraction of a second of such commits, never
    part of one, and each loss is one the system already recovers from: a lost creation
    takes its hold with it (nothing was queued that can run: the worker finds no job); a
    lost take or settlement leaves the job unfinished, so recovery runs it again, and the
    hold is settled (and the usage record written) exactly once."""
    with transaction.atomic():
        if _relaxed():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


_TAKE = f"""
WITH relaxed AS (SELECT {{relaxed}})
UPDATE {SynthesisJob._meta.db_table}
SET status = %(running)s, attempts = attempts + 1, started_at = %(now)s, worker_id = %(worker_id)s
FROM relaxed
WHERE id = %(job_id)s AND tenant_id = %(tenant_id)s AND status = %(queued)s AND attempts < %(max_attempts)s
RETURNING {SynthesisJob._meta.db_table}.*
"""


def job_take(*, tenant_id: int, job_id: int, worker_id: str, now: dt.datetime, max_attempts: int) -> SynthesisJob | None:
    """The queued job with attempts left, now running as ours; None if it is not such a job."""
    params = {
        "running": SynthesisJob.Status.RUNNING, "queued": SynthesisJob.Status.QUEUED, "now": now,
        "worker_id": worker_id, "job_id": job_id, "tenant_id": tenant_id, "max_attempts": max_attempts,
    }
    # One statement, so its own transaction.
    return next(iter(SynthesisJob.objects.raw(_TAKE.format(relaxed=relaxed_commit_sql()), params)), None)


@dataclasses.dataclass(frozen=True)
class Settled:
    status_before: str  # the job's status when the statement locked it
    succeeded: bool  # this statement finished the job (False: cancelled or already finished)


_JOB = SynthesisJob._meta.db_table
_SETTLE = f"""
WITH old AS (
    SELECT id, status, holds_slot, reservation_id, batch_id
    FROM {_JOB} WHERE id = %(job_id)s AND tenant_id = %(tenant_id)s
    FOR UPDATE
), job AS (
    UPDATE {_JOB} AS j
    SET status = %(succeeded)s, storage_path = %(storage_path)s, format = %(format)s,
        content_type = %(content_type)s, sample_rate = %(sample_rate)s, audio_seconds = %(audio_seconds)s,
        size_bytes = %(size_bytes)s, cache_hit = %(cache_hit)s, processing_seconds = %(processing_seconds)s,
        model_version = %(model_version)s, finished_at = %(now)s, holds_slot = false
    FROM old
    WHERE j.id = old.id AND j.tenant_id = %(tenant_id)s AND old.status IN (%(queued)s, %(running)s)
    RETURNING j.id, j.characters, j.api_key_id, j.created_by_id, j.batch_id, j.voice_id, j.engine, j.mode,
              j.audio_seconds, old.holds_slot AS held_slot, old.reservation_id
), reservation AS (
    UPDATE {QuotaReservation._meta.db_table} AS r
    SET state = %(settled)s, characters_settled = LEAST(GREATEST(%(billed)s, 0), r.characters),
        closed_at = %(now)s
    FROM job
    WHERE r.id = job.reservation_id AND r.tenant_id = %(tenant_id)s AND r.state = %(held)s
    RETURNING r.period_id, r.characters, r.characters_settled
), period AS (
    UPDATE {UsagePeriod._meta.db_table} AS p
    SET characters_reserved = p.characters_reserved - reservation.characters,
        characters_used = p.characters_used + reservation.characters_settled
    FROM reservation
    WHERE p.id = reservation.period_id AND p.tenant_id = %(tenant_id)s
    RETURNING p.id
), slot AS (
    UPDATE {TenantQuota._meta.db_table} AS q
    SET jobs_in_flight = q.jobs_in_flight - 1
    FROM job
    WHERE q.tenant_id = %(tenant_id)s AND job.held_slot AND q.jobs_in_flight > 0
    RETURNING q.id
), record AS (
    INSERT INTO {UsageRecord._meta.db_table} (
        tenant_id, job_id, api_key_id, user_id, batch_id, voice_id, engine, model_version, mode, characters,
        characters_billed, audio_seconds, cached, processing_seconds, gpu_seconds, created_at)
    SELECT %(tenant_id)s, job.id, job.api_key_id, job.created_by_id, job.batch_id, job.voice_id, job.engine,
           %(usage_model_version)s, job.mode, job.characters, %(billed)s, COALESCE(job.audio_seconds, 0),
           %(cache_hit)s, %(processing_seconds)s, %(gpu_seconds)s, %(now)s
    FROM job
    RETURNING id
), pending AS (
    INSERT INTO {UsageRollupPending._meta.db_table} (tenant_id, record_id)
    SELECT %(tenant_id)s, record.id FROM record
    RETURNING id
), entry AS (
    INSERT INTO {CachedAudio._meta.db_table} (
        tenant_id, key, storage_path, voice_id, engine, model_version, format, content_type, sample_rate,
        duration_seconds, size_bytes, hits, created_at)
    SELECT %(tenant_id)s, %(cache_key)s, %(cache_path)s, %(cache_voice_id)s, %(cache_engine)s,
           %(cache_model_version)s, %(cache_format)s, %(cache_content_type)s, %(cache_sample_rate)s,
           %(cache_duration_seconds)s, %(cache_size_bytes)s, 0, %(now)s
    FROM job
    WHERE %(with_cache)s
    ON CONFLICT (tenant_id, key) DO NOTHING
    RETURNING id
)
SELECT old.status, EXISTS (SELECT 1 FROM job), {{relaxed}}
FROM old
"""


def job_settle(
    *,
    tenant_id: int,
    job_id: int,
    now: dt.datetime,
    result: dict,
    billed: int,
    usage_model_version: str,
    gpu_seconds: float | None,
    cache_row: dict | None,
) -> Settled | None:
    """Finish a job that produced audio: the job row (`result`: its audio fields), the hold
    settled at `billed` characters, the slot freed, the usage record and its rollup marker,
    and (`cache_row`, CacheDraft.row_values) the cache entry. Only a queued or running job is
    finished; a cancelled or finished one is left as it is. None: no such job."""
    cache_row = cache_row or {}
    params = {
        "job_id": job_id, "tenant_id": tenant_id, "now": now, "billed": billed,
        "usage_model_version": usage_model_version, "gpu_seconds": gpu_seconds,
        "queued": SynthesisJob.Status.QUEUED, "running": SynthesisJob.Status.RUNNING,
        "succeeded": SynthesisJob.Status.SUCCEEDED,
        "held": QuotaReservation.State.HELD, "settled": QuotaReservation.State.SETTLED,
        **{name: result[name] for name in (
            "storage_path", "format", "content_type", "sample_rate", "audio_seconds", "size_bytes", "cache_hit",
            "processing_seconds", "model_version")},
        "with_cache": bool(cache_row),
        **{f"cache_{name}": cache_row.get(name) for name in (
            "key", "voice_id", "engine", "model_version", "format", "content_type", "sample_rate",
            "duration_seconds", "size_bytes")},
        "cache_path": cache_row.get("storage_path"),
    }
    with connection.cursor() as cursor:  # one statement, so atomic on its own
        cursor.execute(_SETTLE.format(relaxed=relaxed_commit_sql()), params)
        row = cursor.fetchone()
    if row is None:
        return None
    return Settled(status_before=row[0], succeeded=row[1])
