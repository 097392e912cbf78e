"""Recovering jobs (the workers' upkeep): lost messages, dead workers, stale streams, and
cancelled jobs whose worker died before it settled them. Crosses tenants by design."""

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.runtime import presence
from config.runtime.upkeep import broker_state_age
from synthesis.jobs import create
from synthesis.jobs.policy import JOB_TIME_LIMIT_MS, MAX_ATTEMPTS
from synthesis.jobs.settle import fail_locked, release_holds
from synthesis.models import SynthesisJob
from tenants.errors import ErrorCode

logger = logging.getLogger(__name__)


def alive_worker_ids() -> set[str]:
    return {worker["id"] for worker in presence.workers_alive()}


def job_orphaned(job: SynthesisJob, alive: set[str]) -> bool:
    """A running job whose worker is gone (see worker_gone)."""
    return job.status == SynthesisJob.Status.RUNNING and worker_gone(job, alive)


def worker_gone(job: SynthesisJob, alive: set[str]) -> bool:
    """The worker that took the job stopped sending heartbeats, or (for a job run outside a
    worker) the job has been running longer than any job may."""
    if job.worker_id:
        return job.worker_id != presence.current_worker_id() and job.worker_id not in alive
    limit = dt.timedelta(milliseconds=JOB_TIME_LIMIT_MS) + dt.timedelta(seconds=60)
    return job.started_at is not None and job.started_at < timezone.now() - limit


def worker_died_locked(job: SynthesisJob) -> bool:
    """Count a death of the worker process that was running `job` (call with the row locked).

    A job may be what kills its workers (memory, a crash in native code), and every job in
    flight in that process dies with it. So the job runs alone on its retry (see
    worker_death_quarantine), and once its workers died PARLA_JOB_WORKER_DEATHS times while
    running it, it is failed and refunded instead: True."""
    job.worker_deaths += 1
    job.save(update_fields=["worker_deaths"])
    logger.warning("synthesis_job_run.worker_died",
                   extra={"tenant_id": job.tenant_id, "job_id": job.pk, "deaths": job.worker_deaths,
                          "worker_id": job.worker_id})
    if job.worker_deaths < settings.PARLA_JOB_WORKER_DEATHS:
        return False
    fail_locked(job, code=ErrorCode.SYNTHESIS_FAILED,
                 message=f"The worker running this job stopped {job.worker_deaths} times while it ran; "
                         "the characters were refunded.")
    return True


def synthesis_jobs_recover_all_tenants(*, broker_lost: bool | None = None) -> int:
    """Re-enqueue jobs whose message or worker was lost. Crosses tenants by design.

    - running, but its worker stopped sending heartbeats (or, run outside a worker, for
      longer than a job may run): the worker died; run it again, unless its workers died
      PARLA_JOB_WORKER_DEATHS times while running it (see worker_died_locked).
    - queued, when the broker lost its messages (see config.runtime.upkeep.broker_state_age),
      or enqueued longer ago than PARLA_JOB_REQUEUE_SECONDS: send it again (a duplicate is
      harmless, the actor is idempotent).
    A job that has used all its attempts is failed and refunded instead.
    `broker_lost`: what broker_state_age() said this round (asked here when not given; it can
    say so only once, so the upkeep asks once and passes it to each recovery).
    """
    now = timezone.now()
    stale_queued = now - dt.timedelta(seconds=settings.PARLA_JOB_REQUEUE_SECONDS)
    if broker_lost is None:
        # The broker lost its messages (Redis restarted without persistence, or the embedded
        # process restarted): every queued job needs its message again.
        broker_lost = broker_state_age() == 0.0
    # Heartbeats were lost with it: workers report again within a heartbeat interval (and
    # the upkeep lock keeps others from running sooner), so judge running jobs next time.
    presence_trusted = not broker_lost
    alive = alive_worker_ids()
    recovered = 0
    candidates = SynthesisJob.objects.filter(
        status__in=[SynthesisJob.Status.RUNNING, SynthesisJob.Status.QUEUED]
    ).exclude(mode=SynthesisJob.Mode.STREAM).values_list("tenant_id", "pk")
    for tenant_id, job_id in candidates.iterator():
        with transaction.atomic():
            job = (SynthesisJob.objects.for_tenant(tenant_id).select_for_update(skip_locked=True)
                   .filter(pk=job_id).first())
            if job is None:
                continue
            queued = job.status == SynthesisJob.Status.QUEUED
            lost_message = queued and (broker_lost or (job.enqueued_at and job.enqueued_at < stale_queued))
            orphaned = presence_trusted and job_orphaned(job, alive)
            if not (lost_message or orphaned):
                continue
            if orphaned and worker_died_locked(job):
                continue
            if job.attempts >= MAX_ATTEMPTS:
                fail_locked(job, code=ErrorCode.SYNTHESIS_FAILED,
                             message="The job's worker stopped too often; the characters were refunded.")
                continue
            job.status = SynthesisJob.Status.QUEUED
            job.enqueued_at = now
            job.save(update_fields=["status", "enqueued_at"])
            create.enqueue(job)
        logger.info("synthesis_jobs_recover.requeued", extra={"tenant_id": tenant_id, "job_id": job_id})
        recovered += 1
    return recovered


def cancelled_jobs_release_all_tenants() -> int:
    """Close the holds of jobs cancelled while they ran whose worker died before it could
    stop and settle them (a live worker does that itself). Crosses tenants by design."""
    alive = alive_worker_ids()
    released = 0
    stuck = SynthesisJob.objects.filter(status=SynthesisJob.Status.CANCELLED, holds_slot=True)
    for tenant_id, job_id in stuck.values_list("tenant_id", "pk").iterator():
        with transaction.atomic():
            job = SynthesisJob.objects.for_tenant(tenant_id).select_for_update(skip_locked=True).filter(
                pk=job_id, holds_slot=True).first()
            if job is None or not worker_gone(job, alive):
                continue
            release_holds(job)
            job.save(update_fields=["holds_slot"])
        logger.info("cancelled_jobs_release.released", extra={"tenant_id": tenant_id, "job_id": job_id})
        released += 1
    return released


def stream_jobs_expire_all_tenants() -> int:
    """Streams are not re-run (nobody is listening any more): fail ones left unfinished."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.PARLA_JOB_REQUEUE_SECONDS)
    expired = 0
    stale = SynthesisJob.objects.filter(
        mode=SynthesisJob.Mode.STREAM, status__in=[SynthesisJob.Status.QUEUED, SynthesisJob.Status.RUNNING],
        created_at__lt=cutoff,
    ).values_list("tenant_id", "pk")
    for tenant_id, job_id in stale.iterator():
        with transaction.atomic():
            job = SynthesisJob.objects.for_tenant(tenant_id).select_for_update().get(pk=job_id)
            if not job.finished:
                fail_locked(job, code=ErrorCode.SYNTHESIS_FAILED,
                             message="The stream was not served in time; nothing was charged.")
                expired += 1
    return expired
