"""The job lifecycle, the only code that creates, runs, settles, cancels and recovers jobs.

Everything that makes audio (the API, the OpenAI endpoint, the dashboard, batches, voice
previews) goes through these functions:

- create.py: every limit checked (text, audio length, quota, slot), the hold and the row in
  one transaction, the message after commit; batches' items in bulk.
- execute.py: a worker takes a job, renders it (stopping at the plan's audio limit or a
  cancellation), stores its audio and settles it.
- settle.py: the job row, its hold and slot (tenants.quotas), its charge (to the usage ledger,
  through events.py) and its cache entry (synthesis.cache) at once: on PostgreSQL one
  statement assembled from the owners' CTEs (statements.py), elsewhere one transaction of
  their ORM functions; failures, and jobs stopped early (billed for what they delivered).
- cancel.py: the tenant's cancel and delete.
- recover.py: the workers' upkeep (lost messages, dead workers, stale streams).
- events.py: what the apps above learn (the ledger, each charge and failure; a batch, that its
  item ended).
- commits.py: how the lifecycle's transactions commit (PARLA_ASYNC_JOB_COMMITS).
- policy.py: attempts, retries and time limits.
- storage.py: a job's files.
"""

from synthesis.jobs.cancel import batch_jobs_cancel_queued, synthesis_job_cancel, synthesis_job_delete
from synthesis.jobs.create import (
    PREVIEW_TEXT,
    BatchJobSpec,
    JobPlan,
    TextTooLong,
    audio_length_check,
    batch_jobs_requeue_failed,
    jobs_create_for_batch,
    jobs_enqueue_queued,
    synthesis_job_create,
    synthesis_job_plan,
    waiting_for_worker,
)
from synthesis.jobs.execute import synthesis_job_execute
from synthesis.jobs.recover import (
    cancelled_jobs_release_all_tenants,
    stream_jobs_expire_all_tenants,
    synthesis_jobs_recover_all_tenants,
)
from synthesis.jobs.settle import DONE_FIELDS

__all__ = [
    "DONE_FIELDS",
    "PREVIEW_TEXT",
    "BatchJobSpec",
    "JobPlan",
    "TextTooLong",
    "audio_length_check",
    "batch_jobs_cancel_queued",
    "batch_jobs_requeue_failed",
    "cancelled_jobs_release_all_tenants",
    "jobs_create_for_batch",
    "jobs_enqueue_queued",
    "stream_jobs_expire_all_tenants",
    "synthesis_job_cancel",
    "synthesis_job_create",
    "synthesis_job_delete",
    "synthesis_job_execute",
    "synthesis_job_plan",
    "synthesis_jobs_recover_all_tenants",
    "waiting_for_worker",
]
