"""PostgreSQL's one-statement steps of a worker's job: take it, settle it.

A 60-character request synthesises in about 0.2 s, and the statements around it are a large
share of its latency: settling a job in the ORM (synthesis.jobs.settle, the path other
databases take) costs 14 round trips, and bench/api_overhead.py measured it 10 points slower
than this (bench/results/api_overhead_runs.md). So on PostgreSQL:

- `job_take` is one conditional UPDATE ... RETURNING of the job row;
- `job_settle` is one statement of data-modifying CTEs, atomic on its own and taking the job
  row's lock first, as the ORM path does. Only the job CTEs are written here; every other
  table's CTEs come from its owner, next to the ORM function they mirror:
  tenants.quotas.holds_close_ctes (hold, period, slot), the usage ledger's (analytics, through
  synthesis.jobs.events) and CacheDraft.insert_ctes (the cache entry). tests/synthesis/
  test_settle.py holds the statement and the ORM path to the same rows.

The job CTE the fragments read (`job`) has these columns: id, tenant_id, characters,
api_key_id, created_by_id, batch_id, voice_id, engine, mode, audio_seconds (the settled row),
held_slot and reservation_id (as they were before). Every statement names the tenant next to
the id, like every tenant-scoped query.
"""

import dataclasses
import datetime as dt

from django.db import connection

from synthesis.cache import CacheDraft
from synthesis.jobs.commits import relaxed_commit_sql
from synthesis.jobs.events import JobCharge, job_charge_ctes
from synthesis.models import SynthesisJob
from tenants.quotas import holds_close_ctes


def available() -> bool:
    return connection.vendor == "postgresql"


_JOB = SynthesisJob._meta.db_table
_TAKE = f"""
WITH relaxed AS (SELECT {{relaxed}})
UPDATE {_JOB}
SET status = %(running)s, attempts = attempts + 1, started_at = %(now)s, worker_id = %(worker_id)s
FROM relaxed
WHERE id = %(job_id)s AND tenant_id = %(tenant_id)s AND status = %(queued)s AND attempts < %(max_attempts)s
RETURNING {_JOB}.*
"""


def job_take(
    *, tenant_id: int, job_id: int, worker_id: str, now: dt.datetime, max_attempts: int
) -> SynthesisJob | None:
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


_SETTLE_JOB = f"""
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
    RETURNING j.id, j.tenant_id, j.characters, j.api_key_id, j.created_by_id, j.batch_id, j.voice_id, j.engine,
              j.mode, j.audio_seconds, old.holds_slot AS held_slot, old.reservation_id
)"""
_SETTLE_END = """
SELECT old.status, EXISTS (SELECT 1 FROM job), {relaxed}
FROM old
"""


def settle_ready(charge: JobCharge) -> bool:
    """Whether this charge's listeners can all take part in one statement."""
    return available() and job_charge_ctes(charge, source="job") is not None


def job_settle(
    *,
    tenant_id: int,
    job_id: int,
    now: dt.datetime,
    result: dict,
    charge: JobCharge,
    cache: tuple[CacheDraft, str] | None,
) -> Settled | None:
    """Finish a job that produced audio in one statement: the job row (`result`: its audio
    fields), the hold settled at the charge's characters and the slot freed (tenants.quotas),
    the charge's listeners' rows (the usage ledger) and (`cache`: the draft and its stored
    file) the cache entry. Only a queued or running job is finished; a cancelled or finished
    one is left as it is. None: no such job."""
    fragments = [
        holds_close_ctes(source="job", tenant_id=tenant_id, characters_used=charge.characters_billed, now=now),
        *job_charge_ctes(charge, source="job"),
    ]
    if cache is not None:
        draft, storage_path = cache
        fragments.append(draft.insert_ctes(storage_path, source="job", now=now))
    params = {
        "job_id": job_id, "tenant_id": tenant_id, "now": now,
        "queued": SynthesisJob.Status.QUEUED, "running": SynthesisJob.Status.RUNNING,
        "succeeded": SynthesisJob.Status.SUCCEEDED, **result,
    }
    for _, fragment_params in fragments:
        if clash := set(fragment_params) & set(params):
            raise RuntimeError(f"Settlement fragments share parameter names: {sorted(clash)}")
        params.update(fragment_params)
    sql = ",".join([_SETTLE_JOB, *(fragment_sql for fragment_sql, _ in fragments)]) + _SETTLE_END.format(
        relaxed=relaxed_commit_sql())
    with connection.cursor() as cursor:  # one statement, so atomic on its own
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return Settled(status_before=row[0], succeeded=row[1])
