"""The lifecycle of a voice enrollment, governed like a synthesis job. The one writer of
VoiceEnrollment.

- Start (web tier, in the transaction that changes the voice, the tenant row then the profile
  row locked): the plan's enrollments a day (UTC) are counted from the rows, the voice's queued
  enrollment is superseded (its slot comes back first), one of the tenant's concurrent-job
  slots is taken (the same ones synthesis jobs take), the profile's generation is bumped, the
  row is written, and the message is sent after commit.
- Take (worker): only a queued enrollment of the voice's current generation runs, and only
  while no other enrollment of the voice runs (a partial unique index stands behind that).
- Finish: the result goes to the profile only if the generation is still current; the slot is
  given back exactly once (`holds_slot`); the end is announced in the same transaction
  (voices.events), which is where analytics writes its ledger row.
- Recover (the workers' upkeep, registered in voices.apps, told the live workers): a
  queued enrollment whose message was lost is sent again; a running one whose worker died is
  run again, or failed once out of attempts, or closed when superseded or its voice is gone.

Lock order everywhere: tenant, profile, enrollment.
"""

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.runtime import presence
from tenants.models import Tenant
from tenants.quotas import job_slot_acquire, job_slot_release
from tenants.services import SYSTEM, AuditContext
from voices.errors import EnrollmentsPerDayReached
from voices.events import enrollment_finished_announce
from voices.models import VoiceEnrollment, VoiceProfile
from voices.tasks.actors import ENROLL_TIME_LIMIT_MS
from voices.tasks.actors import voice_profile_enroll as voice_profile_enroll_actor

logger = logging.getLogger(__name__)

# The first run plus the actor's retries (see voices.tasks.actors).
MAX_ATTEMPTS = 3

Status = VoiceEnrollment.Status


def utc_day_start(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()).astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def enrollments_started_today(*, tenant: Tenant | int) -> int:
    """Enrollments started since midnight UTC, superseded and cancelled ones included."""
    return VoiceEnrollment.objects.for_tenant(tenant).filter(created_at__gte=utc_day_start()).count()


def _send(enrollment: VoiceEnrollment) -> None:
    message = voice_profile_enroll_actor.message(
        enrollment.tenant_id, enrollment.profile_id, enrollment.pk
    ).copy(queue_name=enrollment.queue_name)
    transaction.on_commit(lambda: voice_profile_enroll_actor.broker.enqueue(message))


def _close(enrollment: VoiceEnrollment, *, status: str, error: str = "") -> None:
    """End an unfinished enrollment: its slot back, the end announced. Call with the row locked."""
    enrollment.status = status
    enrollment.error = error
    enrollment.finished_at = timezone.now()
    if enrollment.holds_slot:
        job_slot_release(tenant=enrollment.tenant_id)
        enrollment.holds_slot = False
    enrollment.save(update_fields=["status", "error", "finished_at", "holds_slot", "processing_seconds"])
    enrollment_finished_announce(enrollment)
    logger.info("voice_enrollment.closed", extra={
        "tenant_id": enrollment.tenant_id, "enrollment_id": enrollment.pk, "profile_id": enrollment.profile_id,
        "status": status,
    })


def enrollment_start(
    *, tenant: Tenant, profile: VoiceProfile, queue_name: str, context: AuditContext = SYSTEM
) -> VoiceEnrollment:
    """Start (or restart) the voice's enrollment on `queue_name` (the queue its engine needs).

    Call inside the transaction that changes the voice, with the tenant row and then the
    profile row locked (the daily count and the generation must not race). Raises
    EnrollmentsPerDayReached or ConcurrencyLimitExceeded (429, Retry-After) before anything is
    written; the caller's rollback undoes the rest."""
    plan = tenant.plan
    started = enrollments_started_today(tenant=tenant)
    if started >= plan.enrollments_per_day:
        resets_at = utc_day_start() + dt.timedelta(days=1)
        raise EnrollmentsPerDayReached(
            f"The {plan.name} plan allows {plan.enrollments_per_day} voice enrollments a day (UTC).",
            extra={"limit": plan.enrollments_per_day, "limit_name": "enrollments_per_day", "used": started,
                   "resets_at": resets_at.isoformat()},
            retry_after=(resets_at - timezone.now()).total_seconds(),
        )
    # The queued one gives its slot back first, so a newer request needs no second slot for it.
    for queued in VoiceEnrollment.objects.for_tenant(tenant).select_for_update().filter(
        profile=profile, status=Status.QUEUED
    ):
        _close(queued, status=Status.SUPERSEDED)
    job_slot_acquire(tenant=tenant)
    profile.enrollment_generation += 1
    profile.save(update_fields=["enrollment_generation", "updated_at"])
    enrollment = VoiceEnrollment.objects.create(
        tenant=tenant, profile=profile, generation=profile.enrollment_generation, status=Status.QUEUED,
        voice_id=profile.voice_id, engine=profile.engine, kind=profile.kind, queue_name=queue_name,
        api_key=context.api_key, created_by=context.user, holds_slot=True, enqueued_at=timezone.now(),
    )
    _send(enrollment)
    logger.info("voice_enrollment.started", extra={
        "tenant_id": tenant.pk, "enrollment_id": enrollment.pk, "profile_id": profile.pk,
        "generation": enrollment.generation, "queue": queue_name,
    })
    return enrollment


def enrollments_cancel_queued(*, tenant: Tenant, profile: VoiceProfile) -> None:
    """The voice is being deleted: its queued enrollments end now. A running one ends when its
    worker finishes (or by the upkeep if the worker died): it still holds its slot till then."""
    for queued in VoiceEnrollment.objects.for_tenant(tenant).select_for_update().filter(
        profile=profile, status=Status.QUEUED
    ):
        _close(queued, status=Status.CANCELLED)


# --- Worker side ---------------------------------------------------------------------------


def enrollment_take(
    *, tenant_id: int, profile_id: int | None, enrollment_id: int | None = None
) -> tuple[VoiceEnrollment, VoiceProfile] | None:
    """Mark the enrollment running on this worker, or None when it must not run now.

    Without `enrollment_id` (a message sent before enrollments had rows) the voice's current
    enrollment is meant."""
    with transaction.atomic():
        profile = None
        if profile_id is not None:
            profile = VoiceProfile.objects.for_tenant(tenant_id).select_for_update().filter(pk=profile_id).first()
        enrollments = VoiceEnrollment.objects.for_tenant(tenant_id).select_for_update()
        if enrollment_id is not None:
            enrollment = enrollments.filter(pk=enrollment_id).first()
        elif profile is not None:
            enrollment = enrollments.filter(profile=profile, generation=profile.enrollment_generation).first()
        else:
            enrollment = None
        log = {"tenant_id": tenant_id, "profile_id": profile_id, "enrollment_id": enrollment_id}
        if enrollment is None:
            logger.info("voice_profile_enroll.missing", extra=log)
            return None
        if enrollment.status != Status.QUEUED:
            # Finished, superseded, or being run by another delivery of the same message.
            logger.info("voice_profile_enroll.skipped", extra={**log, "status": enrollment.status})
            return None
        if profile is None or enrollment.profile_id != profile.pk:
            _close(enrollment, status=Status.CANCELLED)
            return None
        if enrollment.generation != profile.enrollment_generation:
            _close(enrollment, status=Status.SUPERSEDED)
            return None
        if VoiceEnrollment.objects.for_tenant(tenant_id).filter(profile=profile, status=Status.RUNNING).exists():
            # An older enrollment of this voice is still running: it hands this one on when it
            # ends (enrollment_finish), or the upkeep does if its worker died.
            logger.info("voice_profile_enroll.waiting", extra=log)
            return None
        if enrollment.attempts >= MAX_ATTEMPTS:
            _fail_profile(profile, "The enrollment failed too often; add or replace a recording to try again.")
            _close(enrollment, status=Status.FAILED, error=profile.error)
            return None
        enrollment.status = Status.RUNNING
        enrollment.attempts += 1
        enrollment.started_at = timezone.now()
        enrollment.worker_id = presence.current_worker_id()
        enrollment.save(update_fields=["status", "attempts", "started_at", "worker_id"])
        return enrollment, profile


def _fail_profile(profile: VoiceProfile, error: str) -> None:
    profile.status = VoiceProfile.Status.FAILED
    profile.error = error
    profile.save(update_fields=["status", "error", "updated_at"])


def _hand_on(profile: VoiceProfile) -> None:
    """Send the voice's current enrollment if it waits for the one that just ended."""
    waiting = VoiceEnrollment.objects.for_tenant(profile.tenant_id).select_for_update().filter(
        profile=profile, generation=profile.enrollment_generation, status=Status.QUEUED
    ).first()
    if waiting is not None:
        waiting.enqueued_at = timezone.now()
        waiting.save(update_fields=["enqueued_at"])
        _send(waiting)


class Outcome:
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry"  # a transient fault: run it again while attempts are left


def enrollment_finish(
    *, enrollment: VoiceEnrollment, outcome: str, processing_seconds: float, result: dict | None = None,
    error: str = "",
) -> str:
    """End the run `enrollment_take` returned, or put it back in the queue (Outcome.RETRY with
    attempts left). `result`: the profile's fields an enrollment that succeeded sets.

    Returns the status this call gave the enrollment ("queued" when it will run again), or None
    when it changed nothing: the enrollment was meanwhile recovered and taken by another run,
    or ended. A file the result names is the caller's to delete unless "succeeded" came back."""
    with transaction.atomic():
        profile = None
        if enrollment.profile_id is not None:
            profile = VoiceProfile.objects.for_tenant(enrollment.tenant_id).select_for_update().filter(
                pk=enrollment.profile_id).first()
        row = VoiceEnrollment.objects.for_tenant(enrollment.tenant_id).select_for_update().get(pk=enrollment.pk)
        if row.status != Status.RUNNING or row.attempts != enrollment.attempts:
            logger.info("voice_profile_enroll.not_finished", extra={
                "tenant_id": row.tenant_id, "enrollment_id": row.pk, "status": row.status})
            return None
        row.processing_seconds = round(row.processing_seconds + max(processing_seconds, 0.0), 3)
        if profile is None or row.profile_id is None:
            _close(row, status=Status.CANCELLED)
        elif row.generation != profile.enrollment_generation:
            _close(row, status=Status.SUPERSEDED)
            _hand_on(profile)
        elif outcome == Outcome.RETRY and row.attempts < MAX_ATTEMPTS:
            row.status = Status.QUEUED
            row.save(update_fields=["status", "processing_seconds"])
        elif outcome == Outcome.SUCCEEDED:
            old_path = profile.conditioning_path
            for field, value in (result or {}).items():
                setattr(profile, field, value)
            profile.status, profile.error = VoiceProfile.Status.READY, ""
            profile.save(update_fields=["status", "error", "updated_at", *(result or {})])
            _close(row, status=Status.SUCCEEDED)
            if old_path and old_path != profile.conditioning_path:
                transaction.on_commit(lambda: _delete_file(old_path))
        else:
            error = error or "The enrollment failed."
            _fail_profile(profile, error)
            _close(row, status=Status.FAILED, error=error)
        return row.status


def _delete_file(path: str) -> None:
    from django.core.files.storage import default_storage

    try:
        default_storage.delete(path)
    except OSError:
        logger.warning("voice_enrollment.delete_file_failed", extra={"path": path})


# --- Upkeep --------------------------------------------------------------------------------


def _orphaned(enrollment: VoiceEnrollment, alive: set[str], now: dt.datetime) -> bool:
    """Running, but its worker stopped sending heartbeats, or for longer than the actor's time
    limit lets an enrollment run (a worker that is alive but could not record the end, say
    because the database was away just then)."""
    if enrollment.status != Status.RUNNING:
        return False
    limit = dt.timedelta(milliseconds=ENROLL_TIME_LIMIT_MS) + dt.timedelta(seconds=60)
    if enrollment.started_at is not None and enrollment.started_at < now - limit:
        return True
    return (bool(enrollment.worker_id) and enrollment.worker_id != presence.current_worker_id()
            and enrollment.worker_id not in alive)


def voice_enrollments_recover_all_tenants(*, alive_worker_ids: set[str], broker_lost: bool) -> int:
    """Enrollments whose message or worker was lost. Crosses tenants by design.

    `alive_worker_ids`: the workers with a fresh heartbeat; `broker_lost`: the broker lost its
    queued messages just now (then heartbeats were lost with them too, so running enrollments
    are judged on the next round). Returns how many were sent again or closed.
    """
    now = timezone.now()
    stale_queued = now - dt.timedelta(seconds=settings.PARLA_JOB_REQUEUE_SECONDS)
    presence_trusted = not broker_lost
    recovered = 0
    candidates = VoiceEnrollment.objects.filter(
        status__in=[Status.QUEUED, Status.RUNNING]
    ).values_list("tenant_id", "pk", "profile_id")
    for tenant_id, enrollment_id, profile_id in candidates.iterator():
        with transaction.atomic():
            profile = None
            if profile_id is not None:
                profile = VoiceProfile.objects.for_tenant(tenant_id).select_for_update().filter(pk=profile_id).first()
            row = VoiceEnrollment.objects.for_tenant(tenant_id).select_for_update(skip_locked=True).filter(
                pk=enrollment_id).first()
            if row is None or row.finished:
                continue
            if row.status == Status.QUEUED:
                if not (broker_lost or row.enqueued_at is None or row.enqueued_at < stale_queued):
                    continue
                row.enqueued_at = now
                row.save(update_fields=["enqueued_at"])
                _send(row)  # a duplicate is harmless: only a queued row is taken
            elif presence_trusted and _orphaned(row, alive_worker_ids, now):
                if profile is None or row.profile_id is None:
                    _close(row, status=Status.CANCELLED)
                elif row.generation != profile.enrollment_generation:
                    _close(row, status=Status.SUPERSEDED)
                    _hand_on(profile)
                elif row.attempts >= MAX_ATTEMPTS:
                    _fail_profile(profile, "The enrollment's worker stopped too often; add or replace a recording "
                                           "to try again.")
                    _close(row, status=Status.FAILED, error=profile.error)
                else:
                    row.status = Status.QUEUED
                    row.enqueued_at = now
                    row.save(update_fields=["status", "enqueued_at"])
                    _send(row)
            else:
                continue
        logger.info("voice_enrollments_recover.recovered",
                    extra={"tenant_id": tenant_id, "enrollment_id": enrollment_id})
        recovered += 1
    return recovered
