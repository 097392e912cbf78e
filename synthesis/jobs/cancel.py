"""Cancelling and deleting jobs (the tenant's DELETE)."""

import logging

from django.db import transaction
from django.utils import timezone

from config.runtime.events import job_cancel_mark
from synthesis.jobs.settle import after_finish, release_holds
from synthesis.jobs.storage import delete_file
from synthesis.models import SynthesisJob
from tenants.models import Tenant

logger = logging.getLogger(__name__)


@transaction.atomic
def synthesis_job_cancel(*, tenant: Tenant, job: SynthesisJob) -> SynthesisJob:
    """Stop a job that has not finished; a finished job is left as it is.

    A queued job gives its hold and slot back at once. A running one keeps them until its
    worker, which checks between sentences, has stopped: the slot must not free capacity
    that is still in use, and a stream is billed for the audio it had sent."""
    job = SynthesisJob.objects.for_tenant(tenant).select_for_update().get(pk=job.pk)
    if job.finished:
        return job
    running = job.status == SynthesisJob.Status.RUNNING
    job.status = SynthesisJob.Status.CANCELLED
    job.finished_at = timezone.now()
    if running:
        transaction.on_commit(lambda: job_cancel_mark(job_id=job.pk))
    else:
        release_holds(job)
    job.save(update_fields=["status", "finished_at", "holds_slot"])
    after_finish(job)
    return job


def synthesis_job_delete(*, tenant: Tenant, job: SynthesisJob) -> SynthesisJob:
    """Cancel the job if it is still running, and remove its stored audio.

    The row stays: it is the record behind the tenant's usage ledger.
    """
    job = synthesis_job_cancel(tenant=tenant, job=job)
    with transaction.atomic():
        job = SynthesisJob.objects.for_tenant(tenant).select_for_update().get(pk=job.pk)
        path = job.storage_path
        if job.audio_deleted_at is None:
            job.audio_deleted_at = timezone.now()
            job.storage_path = ""
            job.save(update_fields=["audio_deleted_at", "storage_path"])
    if path:
        delete_file(path)  # After commit: a rolled-back delete keeps its file.
    return job


def batch_jobs_cancel_queued(*, tenant: Tenant, batch_id: int) -> int:
    """Cancel a batch's jobs that have not started (the batch holds their characters and its
    slot itself, so there is nothing of theirs to give back); their count. Running ones finish."""
    return SynthesisJob.objects.for_tenant(tenant).filter(batch_id=batch_id, status=SynthesisJob.Status.QUEUED).update(
        status=SynthesisJob.Status.CANCELLED, finished_at=timezone.now())
