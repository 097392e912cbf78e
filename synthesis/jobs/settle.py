"""Settling a job: its row, its hold and slot (tenants.quotas), its charge (announced to the
usage ledger, see synthesis.jobs.events) and its cache entry (synthesis.cache), all at once:
on PostgreSQL in one statement assembled from the owners' CTEs (synthesis.jobs.statements),
elsewhere in one transaction of the owners' ORM functions. Also failing a job, and a job
stopped early (billed for what it delivered)."""

import dataclasses
import logging
import math
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from config.metrics_recording import synthesis_job_observe
from config.runtime.events import JobEvent, job_event_publish
from synthesis.audio import AudioOptions
from synthesis.cache import CacheDraft, audio_size
from synthesis.errors import EngineUnavailable
from synthesis.jobs import statements, storage
from synthesis.jobs.commits import job_transaction
from synthesis.jobs.events import JobCharge, job_charge_committed, job_charged, job_failed, job_finished
from synthesis.jobs.storage import delete_file
from synthesis.models import CachedAudio, SynthesisJob
from synthesis.text import prepare
from synthesis.text.ssml import count_characters
from tenants.quotas import (
    job_slot_release,
    quota_reservation_release,
    quota_reservation_settle,
)

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Outcome:
    data: bytes | Path  # a file: a long render's or a long stream's, deleted once stored
    content_type: str
    sample_rate: int
    audio_seconds: float
    cache_hit: bool
    model_version: str
    extension: str
    cache_draft: CacheDraft | None = None  # a miss to store in the cache as the job settles


@dataclasses.dataclass
class Delivered:
    """What a stopped job had delivered: a stream's audio its reader was sent."""

    characters: int = 0  # normalised characters of the segments spoken
    seconds: float = 0.0


def release_holds(job: SynthesisJob, *, billed: int = 0) -> None:
    """Close what an unfinished job holds: its quota hold (charging `billed` characters of it,
    none by default) and its slot. Call with the row locked; the caller saves holds_slot."""
    if job.reservation_id:
        if billed:
            quota_reservation_settle(tenant=job.tenant_id, reservation_id=job.reservation_id, characters_used=billed)
        else:
            quota_reservation_release(tenant=job.tenant_id, reservation_id=job.reservation_id)
    if job.holds_slot:
        job_slot_release(tenant=job.tenant_id)
        job.holds_slot = False


def after_finish(job: SynthesisJob) -> None:
    """The job ended: tell the apps that listen (a batch whose item it was), after commit."""
    job_finished(job)


def _billed_for(job: SynthesisJob, delivered: Delivered) -> int:
    """The job's billed characters in the share of its text whose audio was delivered."""
    if delivered.characters <= 0 or not job.characters:
        return 0
    prepared = prepare(text=None if job.ssml else job.text, ssml=job.ssml or None, normalize=job.normalize,
                       language=job.language)
    total = sum(count_characters(segment.text) for segment in prepared.segments)
    return min(job.characters, math.ceil(job.characters * delivered.characters / total)) if total else job.characters


def _charge_delivered(job: SynthesisJob, delivered: Delivered) -> int:
    """Close the holds of a job that stopped early, charging what it delivered (a stream's
    audio sent to its reader), and write that usage. Call with the row locked; returns the
    characters billed. The caller saves the row."""
    billed = _billed_for(job, delivered)
    release_holds(job, billed=billed)
    if billed:
        job.audio_seconds = round(delivered.seconds, 3)
        job_charged(JobCharge(job=job, characters_billed=billed, cached=False, processing_seconds=0.0,
                              model_version=model_version_of(job)))
    return billed


def settle_stopped(job: SynthesisJob, *, reason: str, delivered: Delivered) -> None:
    """The render stopped: the tenant cancelled the job (its row already says so) or the
    stream's reader left (then it is cancelled here). Its slot and the rest of its hold go back
    only now that nothing runs for it any more."""
    with transaction.atomic():
        locked = SynthesisJob.objects.for_tenant(job.tenant_id).select_for_update().get(pk=job.pk)
        if locked.status == SynthesisJob.Status.RUNNING:
            locked.status = SynthesisJob.Status.CANCELLED
            locked.finished_at = timezone.now()
            locked.error_code = "stream_abandoned"
            locked.error_message = "The client stopped reading the stream; it was billed for the audio it was sent."
            after_finish(locked)
        elif not (locked.status == SynthesisJob.Status.CANCELLED and locked.holds_slot):
            return  # finished some other way, holds closed already
        billed = _charge_delivered(locked, delivered if locked.mode == SynthesisJob.Mode.STREAM else Delivered())
        locked.save(update_fields=["status", "finished_at", "error_code", "error_message", "holds_slot",
                                   "audio_seconds"])
    transaction.on_commit(lambda: job_event_publish(job_id=job.pk, event=JobEvent("error", info={
        "code": "cancelled", "message": "The job was cancelled."})))
    logger.info("synthesis_job_run.stopped", extra={"tenant_id": job.tenant_id, "job_id": job.pk, "reason": reason,
                                                    "characters_billed": billed})


def fail(job: SynthesisJob, *, code: str, message: str, delivered: Delivered | None = None) -> None:
    delivered = delivered if delivered is not None and job.mode == SynthesisJob.Mode.STREAM else Delivered()
    with transaction.atomic():
        locked = SynthesisJob.objects.for_tenant(job.tenant_id).select_for_update().get(pk=job.pk)
        cancelled = locked.status == SynthesisJob.Status.CANCELLED and locked.holds_slot
        if locked.status == SynthesisJob.Status.RUNNING:
            fail_locked(locked, code=code, message=message, delivered=delivered)
    if cancelled:  # the tenant cancelled it while it ran: it stopped, whatever the error
        settle_stopped(job, reason="cancelled", delivered=delivered)


def fail_locked(job: SynthesisJob, *, code: str, message: str, delivered: Delivered | None = None) -> None:
    """Mark an unfinished job failed and give back its holds (a stream that had sent audio pays
    for what it sent). Call with the row locked."""
    job.status = SynthesisJob.Status.FAILED
    job.error_code, job.error_message = str(code), message
    job.finished_at = timezone.now()
    if _charge_delivered(job, delivered or Delivered()):
        job.error_message = f"{message} The stream was billed for the audio it had sent."
    job.save(update_fields=["status", "error_code", "error_message", "finished_at", "holds_slot", "audio_seconds"])
    job_failed(job)
    after_finish(job)
    transaction.on_commit(lambda: job_event_publish(
        job_id=job.pk, event=JobEvent("error", info={"code": str(code), "message": job.error_message})))
    logger.info("synthesis_job_run.failed_permanently",
                extra={"tenant_id": job.tenant_id, "job_id": job.pk, "code": str(code)})


def _gpu_seconds(engine_name: str, processing_seconds: float) -> float | None:
    """The job's processing time when its engine runs on a GPU in this worker, else None."""
    from synthesis.engines.registry import engine_get

    try:
        device = engine_get(engine_name).device
    except EngineUnavailable:
        return None
    return processing_seconds if device.startswith(("cuda", "gpu")) else None


def model_version_of(job: SynthesisJob) -> str:
    """What made the audio: the render's model version, or (streams) the engine's."""
    if job.model_version:
        return job.model_version
    from synthesis.engines.registry import engine_get

    try:
        return engine_get(job.engine).info.model_version
    except EngineUnavailable:
        return ""


# What a "done" event tells of the job besides its status (see synthesis.api.responses.wait_for_job).
DONE_FIELDS = ("storage_path", "format", "content_type", "sample_rate", "audio_seconds", "size_bytes", "cache_hit",
               "model_version")


def succeed(job: SynthesisJob, outcome: Outcome, *, processing_seconds: float,
             delivered: Delivered | None = None) -> None:
    """Settle a job that produced audio: at once the job row, its hold, its slot, its charge
    and (a miss) its cache entry; then the metrics, then "done" (on PostgreSQL the request for
    its report rollup comes after: nobody waits on it).

    The cache entry is written with the settlement, never before it, so a job whose settling
    failed finds no entry of its own on its retry (it would bill itself nothing)."""
    path = storage.store_audio(job, outcome.data, outcome.extension)
    cache_path = _cache_file_write(job, outcome.cache_draft)
    processing_seconds = round(processing_seconds, 3)
    billed = 0 if outcome.cache_hit else job.characters
    result = {
        "storage_path": path, "format": AudioOptions(**job.audio_options).format,
        "content_type": outcome.content_type, "sample_rate": outcome.sample_rate,
        "audio_seconds": round(outcome.audio_seconds, 3), "size_bytes": audio_size(outcome.data),
        "cache_hit": outcome.cache_hit, "processing_seconds": processing_seconds,
        "model_version": outcome.model_version,
    }
    usage_model_version = outcome.model_version or model_version_of(job)
    gpu_seconds = None if outcome.cache_hit else _gpu_seconds(job.engine, processing_seconds)
    now = timezone.now()
    charge = JobCharge(job=job, characters_billed=billed, cached=outcome.cache_hit,
                       processing_seconds=processing_seconds, model_version=usage_model_version,
                       gpu_seconds=gpu_seconds, first=True, at=now)
    if statements.settle_ready(charge):
        settled = statements.job_settle(
            tenant_id=job.tenant_id, job_id=job.pk, now=now, result=result, charge=charge,
            cache=(outcome.cache_draft, cache_path) if cache_path else None,
        )
        if settled is None or not settled.succeeded:
            _not_settled(job, path, cache_path, outcome.cache_draft, status=settled and settled.status_before,
                         delivered=delivered)
            return
        after_finish(job)
        _done(job, outcome, result)
        job_charge_committed(charge)  # what the listeners do after (the report rollup): nobody waits on it
    else:
        with job_transaction():
            locked = SynthesisJob.objects.for_tenant(job.tenant_id).select_for_update().get(pk=job.pk)
            if locked.finished:
                _not_settled(job, path, cache_path, outcome.cache_draft, status=locked.status,
                             delivered=delivered)
                return
            _succeed_locked(locked, result, billed=billed, usage_model_version=usage_model_version,
                            gpu_seconds=gpu_seconds, now=now)
            if cache_path:
                outcome.cache_draft.insert_row(cache_path)
        _done(job, outcome, result)
    logger.info("synthesis_job_run.succeeded", extra={
        "tenant_id": job.tenant_id, "job_id": job.pk, "cache_hit": outcome.cache_hit,
        "seconds": processing_seconds,
    })


def _done(job: SynthesisJob, outcome: Outcome, result: dict) -> None:
    synthesis_job_observe(engine=job.engine, processing_seconds=result["processing_seconds"],
                          audio_seconds=outcome.audio_seconds, cache_hit=outcome.cache_hit)
    # Last: a client answered on "done" finds the job settled, its audio in the cache (an
    # identical request right after is a hit) and the metrics counted.
    # It carries what the job row now says of the audio, so the waiting request needs no query.
    job_event_publish(job_id=job.pk, event=JobEvent("done", info={
        "status": SynthesisJob.Status.SUCCEEDED, **{name: result[name] for name in DONE_FIELDS},
    }))


def _cache_file_write(job: SynthesisJob, draft: CacheDraft | None) -> str | None:
    """The cache file of a miss, written before the settlement that adds its row; None if
    there is nothing to cache or the write failed (the job does not depend on the cache)."""
    if draft is None:
        return None
    try:
        return draft.write_file()
    except Exception:  # noqa: BLE001  the cache is an optimisation
        logger.warning("synthesis_job_run.cache_store_failed",
                       extra={"tenant_id": job.tenant_id, "job_id": job.pk}, exc_info=True)
        return None


def _not_settled(job: SynthesisJob, path: str, cache_path: str | None, draft: CacheDraft | None, *,
                 status: str | None, delivered: Delivered | None) -> None:
    """The job was cancelled while it ran (its audio is not kept; it is charged only for
    what a stream had sent), or another run of it (a recovered one) finished first and wrote
    the same file."""
    if status != SynthesisJob.Status.CANCELLED:
        return
    transaction.on_commit(lambda: delete_file(path))
    if cache_path and not CachedAudio.objects.for_tenant(job.tenant_id).filter(key=draft.key).exists():
        transaction.on_commit(lambda: delete_file(cache_path))  # no entry shares the file
    settle_stopped(job, reason="cancelled", delivered=delivered or Delivered())


def _succeed_locked(job: SynthesisJob, result: dict, *, billed: int, usage_model_version: str,
                    gpu_seconds: float | None, now) -> None:
    """The job row, its hold and slot, and its charge: the ORM twin of statements.job_settle
    (databases other than PostgreSQL). Call with the row locked."""
    for name, value in result.items():
        setattr(job, name, value)
    job.status = SynthesisJob.Status.SUCCEEDED
    job.finished_at = now
    if job.reservation_id:
        quota_reservation_settle(tenant=job.tenant_id, reservation_id=job.reservation_id, characters_used=billed)
    if job.holds_slot:
        job_slot_release(tenant=job.tenant_id)
        job.holds_slot = False
    job.save(update_fields=[*result, "status", "finished_at", "holds_slot"])
    job_charged(JobCharge(
        job=job, characters_billed=billed, cached=job.cache_hit, processing_seconds=job.processing_seconds,
        model_version=usage_model_version, gpu_seconds=gpu_seconds, first=True, at=now,
    ))
    after_finish(job)
