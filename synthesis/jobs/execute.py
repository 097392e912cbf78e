"""Running a job on a worker: take it, render it (stopping at the plan's audio limit or a
cancellation), then settle it (synthesis.jobs.settle). Idempotent: only a queued job runs, a
redelivered message finds it running or finished and leaves it alone, and the audio goes to a
key derived from the job id."""

import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from dramatiq.threading import Interrupt

from config.runtime import presence
from config.runtime.events import (
    JobEvent,
    job_cancel_marked,
    job_event_publish,
    stream_chunk_publish,
)
from synthesis.audio import AudioOptions
from synthesis.errors import AudioTooLongRequested, EngineUnavailable, SynthesisFailed
from synthesis.jobs import statements
from synthesis.jobs.commits import job_transaction
from synthesis.jobs.policy import MAX_ATTEMPTS
from synthesis.jobs.recover import alive_worker_ids, job_orphaned, worker_died_locked
from synthesis.jobs.settle import Delivered, Outcome, fail, fail_locked, settle_stopped, succeed
from synthesis.jobs.storage import StreamCopy, audio_seconds_of, local_file
from synthesis.models import SynthesisJob
from synthesis.text.ssml import count_characters
from tenants.errors import ApplicationError, ErrorCode

logger = logging.getLogger(__name__)


def _start(*, tenant_id: int, job_id: int) -> SynthesisJob | None:
    # The common case in one conditional UPDATE: a queued job with attempts left becomes ours.
    # Everything else (missing, running elsewhere, orphaned, out of attempts) is decided under
    # the row lock below.
    if statements.available():
        job = statements.job_take(tenant_id=tenant_id, job_id=job_id, worker_id=presence.current_worker_id(),
                                  now=timezone.now(), max_attempts=MAX_ATTEMPTS)
        return job if job is not None else _start_locked(tenant_id=tenant_id, job_id=job_id)
    with job_transaction():
        taken = SynthesisJob.objects.for_tenant(tenant_id).filter(
            pk=job_id, status=SynthesisJob.Status.QUEUED, attempts__lt=MAX_ATTEMPTS
        ).update(status=SynthesisJob.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(),
                 worker_id=presence.current_worker_id())
        if taken:
            return SynthesisJob.objects.for_tenant(tenant_id).select_related("voice_profile").get(pk=job_id)
    return _start_locked(tenant_id=tenant_id, job_id=job_id)


def _start_locked(*, tenant_id: int, job_id: int) -> SynthesisJob | None:
    with transaction.atomic():
        job = SynthesisJob.objects.for_tenant(tenant_id).select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.info("synthesis_job_run.missing", extra={"tenant_id": tenant_id, "job_id": job_id})
            return None
        orphaned = job_orphaned(job, alive_worker_ids())
        if job.status != SynthesisJob.Status.QUEUED and not orphaned:
            # Finished, cancelled, or being run by another delivery of the same message.
            logger.info("synthesis_job_run.skipped",
                        extra={"tenant_id": tenant_id, "job_id": job_id, "status": job.status})
            return None
        if orphaned and worker_died_locked(job):
            return None
        if job.attempts >= MAX_ATTEMPTS:
            fail_locked(job, code=ErrorCode.SYNTHESIS_FAILED,
                         message=f"The job failed {job.attempts} times; the characters were refunded.")
            return None
        job.status = SynthesisJob.Status.RUNNING
        job.attempts += 1
        job.started_at = timezone.now()
        job.worker_id = presence.current_worker_id()
        job.save(update_fields=["status", "attempts", "started_at", "worker_id"])
        return job


class _Quarantine:
    """Jobs whose worker died while they ran ("suspects") run alone in their process, so a
    second death is the suspect's own and takes no innocent job with it.

    A suspect waits for the jobs running in this process to end, and no job starts while a
    suspect waits or runs."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._running = 0
        self._suspects = 0  # waiting or running

    @contextmanager
    def __call__(self, *, suspect: bool):
        with self._condition:
            if suspect:
                self._suspects += 1
                self._condition.wait_for(lambda: self._running == 0)
            else:
                self._condition.wait_for(lambda: self._suspects == 0)
            self._running += 1
        try:
            yield
        finally:
            with self._condition:
                self._running -= 1
                if suspect:
                    self._suspects -= 1
                self._condition.notify_all()


worker_death_quarantine = _Quarantine()


def _render_request(job: SynthesisJob, conditioning: Path | None):
    from synthesis.render import RenderRequest

    profile = job.voice_profile
    return RenderRequest(
        voice_id=job.voice_id,
        text=job.text if not job.ssml else None,
        ssml=job.ssml or None,
        normalize=job.normalize,
        language=job.language,
        audio=AudioOptions(**job.audio_options),
        conditioning_path=conditioning,
        conditioning_digest=profile.conditioning_digest if (profile and conditioning) else "",
    )


def _conditioning_storage_path(job: SynthesisJob) -> str:
    profile = job.voice_profile
    if profile is None or profile.kind == "catalog" or job.fallback_used:
        return ""
    if not profile.conditioning_path:
        raise SynthesisFailed(f"The voice {profile.name!r} has no enrollment result; enrol it again.")
    return profile.conditioning_path


class _Stopped(Exception):
    """The render stopped early: its job was cancelled, or its stream's reader went away."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _JobWatch:
    """A job's render watcher (synthesis.render.Watch): it stops the render past the job's
    audio length limit or once the job is cancelled (config.runtime.events' cancel mark: no query
    per sentence), and counts what was spoken."""

    def __init__(self, job: SynthesisJob) -> None:
        self.job = job
        self.spoken = Delivered()
        self.delivered = Delivered()  # streams: what was published to the reader

    def __call__(self, segment, seconds: float) -> None:
        limit = self.job.audio_seconds_limit
        if limit is not None and seconds > limit:
            raise AudioTooLongRequested(
                f"The audio passed the plan's limit of {limit:,} seconds per request; it was stopped there.",
                extra={"rendered_seconds": round(seconds, 1), "limit_seconds": limit},
            )
        if job_cancel_marked(job_id=self.job.pk):
            raise _Stopped("cancelled")
        self.spoken = Delivered(self.spoken.characters + count_characters(segment.text), seconds)


def _run_file(job: SynthesisJob, tenant_id: int, conditioning: Path | None, watch: _JobWatch) -> Outcome:
    from synthesis.render import render

    request = _render_request(job, conditioning)
    result = render(tenant=tenant_id, request=request, use_cache=True, store_later=True, watch=watch)
    return Outcome(
        data=result.data, content_type=result.content_type, sample_rate=result.sample_rate,
        audio_seconds=result.duration_seconds, cache_hit=result.cache_hit,
        model_version=result.model_version, extension=request.audio.file_extension,
        cache_draft=result.cache_draft,
    )


def _run_stream(job: SynthesisJob, conditioning: Path | None, watch: _JobWatch) -> Outcome:
    from synthesis.render import render_stream

    request = _render_request(job, conditioning)
    stream = render_stream(request, watch=watch)
    job_event_publish(job_id=job.pk, event=JobEvent("meta", info={
        "content_type": stream.content_type, "sample_rate": stream.sample_rate, "engine": stream.engine,
    }))
    copy = StreamCopy()
    try:
        for piece in stream.chunks:
            copy.add(piece)
            if not stream_chunk_publish(job_id=job.pk, data=piece, wait_seconds=settings.PARLA_STREAM_IDLE_SECONDS):
                raise _Stopped("abandoned")
            watch.delivered = watch.spoken
    except BaseException:
        copy.discard()
        raise
    data = copy.result(wav=request.audio.format == "wav")
    return Outcome(
        data=data, content_type=stream.content_type, sample_rate=stream.sample_rate,
        # A long stream's copy is on disk: its length comes from the encoder, not a decode.
        audio_seconds=stream.seconds() if isinstance(data, Path) else audio_seconds_of(data, request.audio,
                                                                                  stream.sample_rate),
        cache_hit=False, model_version="", extension=request.audio.file_extension,
    )


def synthesis_job_execute(*, tenant_id: int, job_id: int, suspect: bool = False) -> None:
    """Run one job (the actor's body). Idempotent; see the module docstring.

    `suspect`: the job was running when a worker died (recovery says so in the message). Its
    turn in the quarantine comes before it is taken: a job still waiting for its turn is
    queued, so a death of this process while it waits is not counted against it."""
    with worker_death_quarantine(suspect=suspect):
        job = _start(tenant_id=tenant_id, job_id=job_id)
        if job is None:
            return
        if suspect or not job.worker_deaths:
            _execute(job)
            return
    # A suspect whose message did not say so (an older delivery): alone from here on.
    with worker_death_quarantine(suspect=True):
        _execute(job)


def _execute(job: SynthesisJob) -> None:
    tenant_id, job_id = job.tenant_id, job.pk
    started = time.perf_counter()
    watch = _JobWatch(job)
    outcome = None
    try:
        with local_file(_conditioning_storage_path(job)) as conditioning:
            if job.mode == SynthesisJob.Mode.STREAM:
                outcome = _run_stream(job, conditioning, watch)
            else:
                outcome = _run_file(job, tenant_id, conditioning, watch)
        # Inside the try: a fault while settling (the database, storage) must not leave the
        # job running under a live worker, where recovery would never look for it.
        succeed(job, outcome, processing_seconds=time.perf_counter() - started, delivered=watch.delivered)
    except _Stopped as stop:
        settle_stopped(job, reason=stop.reason, delivered=watch.delivered)
    except (ApplicationError, SynthesisFailed, EngineUnavailable) as exc:
        # Permanent: the same input will fail the same way. Fail now, give everything back
        # (a stream pays for what it had sent).
        code = getattr(exc, "code", ErrorCode.SYNTHESIS_FAILED)
        fail(job, code=str(code), message=getattr(exc, "message", str(exc)), delivered=watch.delivered)
    except (Exception, Interrupt) as exc:
        # Interrupt: the actor's time limit stopped a hung synthesis. Same as any other
        # transient fault: run it again while attempts are left.
        if job.mode == SynthesisJob.Mode.STREAM or job.attempts >= MAX_ATTEMPTS:
            logger.exception("synthesis_job_run.failed", extra={"tenant_id": tenant_id, "job_id": job_id})
            fail(job, code=ErrorCode.SYNTHESIS_FAILED, message="Synthesis failed; the characters were refunded.",
                  delivered=watch.delivered)
            return
        logger.warning("synthesis_job_run.retry", extra={"tenant_id": tenant_id, "job_id": job_id, "error": repr(exc)})
        requeued = SynthesisJob.objects.for_tenant(tenant_id).filter(
            pk=job_id, status=SynthesisJob.Status.RUNNING).update(status=SynthesisJob.Status.QUEUED)
        if not requeued:  # cancelled meanwhile: nothing left to retry
            settle_stopped(job, reason="cancelled", delivered=watch.delivered)
            return
        raise  # Transient: Dramatiq retries with backoff.
    finally:
        if outcome is not None and isinstance(outcome.data, Path):  # a long render's file, stored by now
            outcome.data.unlink(missing_ok=True)
