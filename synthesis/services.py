"""Synthesis jobs: created by the web tier with every limit checked, executed by workers.

    job = synthesis_job_create(tenant=t, api_key=k, voice=resolved, text="Hello", mode="sync")
    # ...a worker runs synthesis_job_execute(tenant_id=t.pk, job_id=job.pk)

Creating a job takes a concurrent-job slot and holds the input's characters of the monthly
quota in the same transaction as the row; the message is sent only after commit. Executing
is idempotent: only a queued job runs, a redelivered message finds it running or finished
and leaves it alone, and the audio goes to a key derived from the job id. Finishing settles
the quota, frees the slot and writes one usage record, all in one transaction.
"""

import dataclasses
import datetime as dt
import logging
import math
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from dramatiq.threading import Interrupt
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from analytics.metrics import quota_rejection_count, synthesis_job_observe
from analytics.services import usage_failure_record, usage_record_create, usage_rollup_soon
from config.dramatiq import QUEUE_SYNTHESIS_CPU, QUEUE_SYNTHESIS_GPU
from synthesis import settle
from synthesis.audio import AudioOptions
from synthesis.cache import CacheDraft, audio_content, audio_size
from synthesis.errors import AudioTooLongRequested, EngineUnavailable, SynthesisFailed
from synthesis.live import (
    JobEvent,
    job_cancel_mark,
    job_cancel_marked,
    job_event_publish,
    queue_has_worker,
    stream_chunk_publish,
    stream_reader_mark,
)
from synthesis.models import CachedAudio, SynthesisJob
from synthesis.selectors import ResolvedVoice, speech_voice_resolve
from synthesis.text import PreparedText, prepare
from tenants.errors import ApplicationError, ErrorCode
from tenants.models import ApiKey, Tenant
from tenants.quotas import (
    job_admit,
    job_slot_acquire,
    job_slot_release,
    quota_reservation_release,
    quota_reservation_settle,
)

logger = logging.getLogger(__name__)

# Attempts per job: the first run plus the actor's retries (see synthesis.tasks.actors).
MAX_ATTEMPTS = 3
PREVIEW_TEXT = "Hello! This is a short preview of my voice, reading a sentence for you."


class TextTooLong(ApplicationError):
    code = ErrorCode.TEXT_TOO_LONG
    status = 400

    def __init__(self, message: str, extra: dict | None = None) -> None:
        super().__init__(message, extra)
        quota_rejection_count(reason="plan_limit")  # API and dashboard alike


@dataclasses.dataclass(frozen=True)
class JobPlan:
    """What synthesis_job_create decided: the voice that will speak, and why."""

    voice: ResolvedVoice
    queue_name: str
    fallback_used: bool
    requested_voice_id: str


def _queue_for(voice: ResolvedVoice) -> str:
    return QUEUE_SYNTHESIS_GPU if voice.needs_gpu else QUEUE_SYNTHESIS_CPU


def synthesis_job_plan(*, tenant: Tenant, voice: ResolvedVoice, fallback: bool = False) -> JobPlan:
    """Route to the queue the engine needs; with `fallback`, serve from the default voice
    when that queue has no worker instead of waiting for one."""
    queue_name = _queue_for(voice)
    if fallback and queue_name == QUEUE_SYNTHESIS_GPU and not queue_has_worker(queue_name):
        default = speech_voice_resolve(tenant=tenant, voice=settings.PARLA_DEFAULT_VOICE)
        return JobPlan(voice=default, queue_name=_queue_for(default), fallback_used=True,
                       requested_voice_id=voice.voice_id)
    return JobPlan(voice=voice, queue_name=queue_name, fallback_used=False, requested_voice_id="")


def waiting_for_worker(job: SynthesisJob) -> bool:
    """True while a queued job sits in a queue that no running worker consumes."""
    return job.status == SynthesisJob.Status.QUEUED and not queue_has_worker(job.queue_name)


def _check_length(*, tenant: Tenant, value: str) -> None:
    limit = tenant.plan.request_characters
    if len(value) > limit:
        raise TextTooLong(
            f"The text is {len(value)} characters; the {tenant.plan.name} plan accepts {limit} per request.",
            extra={"limit": limit, "length": len(value)},
        )


def audio_length_check(*, tenant: Tenant, prepared: PreparedText, voice: ResolvedVoice,
                       audio: AudioOptions) -> None:
    """Refuse input whose audio would pass the plan's per-request limit, before any work.

    Pauses cost no characters, so a short text full of SSML <break>s could otherwise render
    hours of silence for a few characters."""
    from synthesis.engines.base import Engine
    from synthesis.engines.registry import engine_get

    try:
        rate = engine_get(voice.engine).fast_reading_rate
    except EngineUnavailable:
        rate = Engine.fast_reading_rate
    estimate = prepared.audio_seconds_floor(characters_per_second=rate, speed=audio.speed)
    limit = tenant.plan.max_audio_seconds_per_request
    if estimate > limit:
        quota_rejection_count(reason="plan_limit")
        raise AudioTooLongRequested(
            f"This request would make at least {estimate:,.0f} seconds of audio (pauses included); "
            f"the {tenant.plan.name} plan allows {limit:,} seconds per request.",
            extra={"estimated_seconds": round(estimate, 1), "limit_seconds": limit},
        )


def _enqueue(job: SynthesisJob) -> None:
    from synthesis.tasks.actors import synthesis_job_run as synthesis_job_run_actor

    # GPU hosts consume only synthesis-gpu: the message goes to the queue the engine needs.
    message = synthesis_job_run_actor.message(job.tenant_id, job.pk).copy(queue_name=job.queue_name)
    if job.mode == SynthesisJob.Mode.STREAM:
        # A stream nobody is waiting for any more is not worth running late.
        message = message.copy(options={**message.options, "max_retries": 0})
    transaction.on_commit(lambda: synthesis_job_run_actor.broker.enqueue(message))


def synthesis_job_create(
    *,
    tenant: Tenant,
    voice: ResolvedVoice,
    mode: str,
    text: str | None = None,
    ssml: str | None = None,
    language: str | None = None,
    normalize: bool = True,
    audio: AudioOptions | None = None,
    api_key: ApiKey | None = None,
    fallback: bool = False,
    created_by=None,
) -> SynthesisJob:
    """Check every limit, hold quota and a job slot, write the row, enqueue after commit.

    `created_by` is the dashboard member making the job (None for API keys)."""
    audio = audio or AudioOptions()
    if mode == SynthesisJob.Mode.STREAM and not audio.streamable:
        raise ApplicationError(
            f"{audio.format} cannot be streamed; use wav, pcm, mp3, opus or ogg.",
            extra={"fields": {"format": ["Not a streaming format."]}},
        )
    _check_length(tenant=tenant, value=text if text is not None else (ssml or ""))
    language = language or voice.language.split("-")[0] or "en"
    prepared = prepare(text=text, ssml=ssml, normalize=normalize, language=language)
    characters = prepared.billed_characters
    plan = synthesis_job_plan(tenant=tenant, voice=voice, fallback=fallback)
    audio_length_check(tenant=tenant, prepared=prepared, voice=plan.voice, audio=audio)
    billed = mode != SynthesisJob.Mode.PREVIEW

    with settle.job_transaction():
        if billed:
            reservation = job_admit(tenant=tenant, characters=characters, api_key=api_key)
        else:
            job_slot_acquire(tenant=tenant)
            reservation = None
        job = SynthesisJob(
            tenant=tenant,
            mode=mode,
            api_key=api_key,
            created_by=created_by,
            voice_profile=plan.voice.profile,
            voice_id=plan.voice.voice_id,
            engine=plan.voice.engine,
            requested_voice_id=plan.requested_voice_id,
            fallback_used=plan.fallback_used,
            queue_name=plan.queue_name,
            text=text or "",
            ssml=ssml or "",
            language=language,
            normalize=normalize,
            audio_options=dataclasses.asdict(audio),
            characters=characters if billed else 0,
            reservation=reservation,
            holds_slot=True,
            audio_seconds_limit=tenant.plan.max_audio_seconds_per_request,
            enqueued_at=timezone.now(),
        )
        # Related rows were just resolved or created here: checking that they exist would only
        # cost queries.
        job.full_clean(exclude=["tenant", "api_key", "voice_profile", "reservation", "created_by"],
                       validate_constraints=False)
        job.save()
        if mode == SynthesisJob.Mode.STREAM:
            # Its relay is about to read; the worker publishes only to a stream with a reader.
            transaction.on_commit(lambda: stream_reader_mark(job_id=job.pk))
        _enqueue(job)
    logger.info(
        "synthesis_job_create.created",
        extra={"tenant_id": tenant.pk, "job_id": job.pk, "mode": mode, "queue": job.queue_name,
               "characters": characters, "fallback": plan.fallback_used},
    )
    return job


def _after_finish(job: SynthesisJob) -> None:
    """A batch item that ended may be its batch's last: let the batch know after commit."""
    if job.batch_id:
        from batches.services import batch_item_finished

        tenant_id, batch_id = job.tenant_id, job.batch_id
        transaction.on_commit(lambda: batch_item_finished(tenant_id=tenant_id, batch_id=batch_id))


def _release_holds(job: SynthesisJob, *, billed: int = 0) -> None:
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
        _release_holds(job)
    job.save(update_fields=["status", "finished_at", "holds_slot"])
    _after_finish(job)
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
        _delete_file(path)  # After commit: a rolled-back delete keeps its file.
    return job


def _delete_file(path: str) -> None:
    try:
        default_storage.delete(path)
    except OSError:
        logger.warning("synthesis_job_delete.file_failed", extra={"path": path})


# --- Worker side ---------------------------------------------------------------------------


def _start(*, tenant_id: int, job_id: int) -> SynthesisJob | None:
    from synthesis import workers

    # The common case in one conditional UPDATE: a queued job with attempts left becomes ours.
    # Everything else (missing, running elsewhere, orphaned, out of attempts) is decided under
    # the row lock below.
    if settle.available():
        job = settle.job_take(tenant_id=tenant_id, job_id=job_id, worker_id=workers.current_worker_id,
                              now=timezone.now(), max_attempts=MAX_ATTEMPTS)
        if job is not None:
            return job
        return _start_locked(tenant_id=tenant_id, job_id=job_id)
    taken = SynthesisJob.objects.for_tenant(tenant_id).filter(
        pk=job_id, status=SynthesisJob.Status.QUEUED, attempts__lt=MAX_ATTEMPTS
    ).update(status=SynthesisJob.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(),
             worker_id=workers.current_worker_id)
    if taken:
        return SynthesisJob.objects.for_tenant(tenant_id).select_related("voice_profile").get(pk=job_id)
    return _start_locked(tenant_id=tenant_id, job_id=job_id)


def _start_locked(*, tenant_id: int, job_id: int) -> SynthesisJob | None:
    from synthesis import workers

    with transaction.atomic():
        job = SynthesisJob.objects.for_tenant(tenant_id).select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.info("synthesis_job_run.missing", extra={"tenant_id": tenant_id, "job_id": job_id})
            return None
        orphaned = _orphaned(job, _alive_worker_ids())
        if job.status != SynthesisJob.Status.QUEUED and not orphaned:
            # Finished, cancelled, or being run by another delivery of the same message.
            logger.info("synthesis_job_run.skipped",
                        extra={"tenant_id": tenant_id, "job_id": job_id, "status": job.status})
            return None
        if orphaned and _worker_died_locked(job):
            return None
        if job.attempts >= MAX_ATTEMPTS:
            _fail_locked(job, code=ErrorCode.SYNTHESIS_FAILED,
                         message=f"The job failed {job.attempts} times; the characters were refunded.")
            return None
        job.status = SynthesisJob.Status.RUNNING
        job.attempts += 1
        job.started_at = timezone.now()
        job.worker_id = workers.current_worker_id
        job.save(update_fields=["status", "attempts", "started_at", "worker_id"])
        return job


def _worker_died_locked(job: SynthesisJob) -> bool:
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
    _fail_locked(job, code=ErrorCode.SYNTHESIS_FAILED,
                 message=f"The worker running this job stopped {job.worker_deaths} times while it ran; "
                         "the characters were refunded.")
    return True


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


def _alive_worker_ids() -> set[str]:
    from synthesis.live import workers_alive

    return {worker["id"] for worker in workers_alive()}


def _orphaned(job: SynthesisJob, alive: set[str]) -> bool:
    """A running job whose worker is gone (see _worker_gone)."""
    return job.status == SynthesisJob.Status.RUNNING and _worker_gone(job, alive)


def _worker_gone(job: SynthesisJob, alive: set[str]) -> bool:
    """The worker that took the job stopped sending heartbeats, or (for a job run outside a
    worker) the job has been running longer than any job may."""
    from synthesis.tasks.actors import JOB_TIME_LIMIT_MS

    from synthesis import workers

    if job.worker_id:
        return job.worker_id != workers.current_worker_id and job.worker_id not in alive
    limit = dt.timedelta(milliseconds=JOB_TIME_LIMIT_MS) + dt.timedelta(seconds=60)
    return job.started_at is not None and job.started_at < timezone.now() - limit


@contextmanager
def _local_file(storage_path: str):
    """A path on this host for a stored file: itself on local storage, else a temporary copy."""
    if not storage_path:
        yield None
        return
    try:
        yield Path(default_storage.path(storage_path))
        return
    except NotImplementedError:
        pass  # Remote storage (S3): copy it down for the engine.
    suffix = Path(storage_path).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as handle:
        with default_storage.open(storage_path, "rb") as stored:
            handle.write(stored.read())
    try:
        yield Path(handle.name)
    finally:
        os.unlink(handle.name)


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


def _audio_key(job: SynthesisJob, extension: str) -> str:
    return f"tenants/{job.tenant_id}/jobs/{job.pk}.{extension}"


def _store_audio(job: SynthesisJob, data: bytes | Path, extension: str) -> str:
    key = _audio_key(job, extension)
    # Deterministic name: a retried job overwrites its own file instead of adding one.
    if default_storage.exists(key):
        default_storage.delete(key)
    content = audio_content(data)
    try:
        return default_storage.save(key, content)
    finally:
        content.close()


def wav_finalize(data: bytes) -> bytes:
    """Fill in the sizes of a WAV written with a streaming header (sizes unknown up front)."""
    head = _WAV_HEAD_BYTES
    return _wav_sizes(data[:head], len(data)) + data[head:]


# A streamed WAV's chunk headers, up to the start of its samples, fit in this many bytes.
_WAV_HEAD_BYTES = 4096


def _wav_sizes(head: bytes, total: int) -> bytes:
    """`head`, the first bytes of a WAV of `total` bytes, with its RIFF and data sizes set."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return head
    out = bytearray(head)
    out[4:8] = (total - 8).to_bytes(4, "little")
    position = 12
    while position + 8 <= len(out):
        chunk_id, size = bytes(out[position : position + 4]), int.from_bytes(out[position + 4 : position + 8], "little")
        if chunk_id == b"data":
            out[position + 4 : position + 8] = (total - position - 8).to_bytes(4, "little")
            break
        position += 8 + size + (size & 1)
    return bytes(out)


# A stream's stored copy is kept in memory up to this size, and on disk past it.
STREAM_COPY_MEMORY_BYTES = 16 * 1024 * 1024


class _StreamCopy:
    """The stored copy of a stream, built as its pieces go out: bytes while small, a
    temporary file (which the caller deletes once stored) when long."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0
        self._file = None

    def add(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._file is None and self._size > STREAM_COPY_MEMORY_BYTES:
            self._file = tempfile.NamedTemporaryFile(prefix="parla-stream-", delete=False)  # noqa: SIM115
            self._file.writelines(self._pieces)
            self._pieces.clear()
        if self._file is not None:
            self._file.write(piece)
        else:
            self._pieces.append(piece)

    def result(self, *, wav: bool) -> bytes | Path:
        if self._file is None:
            data = b"".join(self._pieces)
            return wav_finalize(data) if wav else data
        if wav:
            self._file.seek(0)
            head = self._file.read(_WAV_HEAD_BYTES)
            self._file.seek(0)
            self._file.write(_wav_sizes(head, self._size))
        self._file.close()
        return Path(self._file.name)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            Path(self._file.name).unlink(missing_ok=True)


@dataclasses.dataclass
class _Outcome:
    data: bytes | Path  # a file: a long render's or a long stream's, deleted once stored
    content_type: str
    sample_rate: int
    audio_seconds: float
    cache_hit: bool
    model_version: str
    extension: str
    cache_draft: CacheDraft | None = None  # a miss to store in the cache as the job settles


class _Stopped(Exception):
    """The render stopped early: its job was cancelled, or its stream's reader went away."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class _Delivered:
    """What a stopped job had delivered: a stream's audio its reader was sent."""

    characters: int = 0  # normalised characters of the segments spoken
    seconds: float = 0.0


class _JobWatch:
    """A job's render watcher (synthesis.render.Watch): it stops the render past the job's
    audio length limit or once the job is cancelled (synthesis.live's cancel mark: no query
    per sentence), and counts what was spoken."""

    def __init__(self, job: SynthesisJob) -> None:
        self.job = job
        self.spoken = _Delivered()
        self.delivered = _Delivered()  # streams: what was published to the reader

    def __call__(self, segment, seconds: float) -> None:
        from synthesis.text.ssml import count_characters

        limit = self.job.audio_seconds_limit
        if limit is not None and seconds > limit:
            raise AudioTooLongRequested(
                f"The audio passed the plan's limit of {limit:,} seconds per request; it was stopped there.",
                extra={"rendered_seconds": round(seconds, 1), "limit_seconds": limit},
            )
        if job_cancel_marked(job_id=self.job.pk):
            raise _Stopped("cancelled")
        self.spoken = _Delivered(self.spoken.characters + count_characters(segment.text), seconds)


def _run_file(job: SynthesisJob, tenant_id: int, conditioning: Path | None, watch: _JobWatch) -> _Outcome:
    from synthesis.render import render

    request = _render_request(job, conditioning)
    result = render(tenant=tenant_id, request=request, use_cache=True, store_later=True, watch=watch)
    return _Outcome(
        data=result.data, content_type=result.content_type, sample_rate=result.sample_rate,
        audio_seconds=result.duration_seconds, cache_hit=result.cache_hit,
        model_version=result.model_version, extension=request.audio.file_extension,
        cache_draft=result.cache_draft,
    )


def _run_stream(job: SynthesisJob, conditioning: Path | None, watch: _JobWatch) -> _Outcome:
    from synthesis.render import render_stream

    request = _render_request(job, conditioning)
    stream = render_stream(request, watch=watch)
    job_event_publish(job_id=job.pk, event=JobEvent("meta", info={
        "content_type": stream.content_type, "sample_rate": stream.sample_rate, "engine": stream.engine,
    }))
    copy = _StreamCopy()
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
    return _Outcome(
        data=data, content_type=stream.content_type, sample_rate=stream.sample_rate,
        # A long stream's copy is on disk: its length comes from the encoder, not a decode.
        audio_seconds=stream.seconds() if isinstance(data, Path) else _seconds_of(data, request.audio,
                                                                                  stream.sample_rate),
        cache_hit=False, model_version="", extension=request.audio.file_extension,
    )


def _seconds_of(data: bytes, audio: AudioOptions, sample_rate: int) -> float:
    import io

    import soundfile as sf

    if audio.format == "pcm":
        return len(data) / (2 * audio.channels * sample_rate) if sample_rate else 0.0
    try:
        return float(sf.info(io.BytesIO(data)).duration)
    except Exception:  # noqa: BLE001  mp3/opus headers soundfile cannot read: fall back to ffprobe-free estimate
        from pydub import AudioSegment

        return len(AudioSegment.from_file(io.BytesIO(data))) / 1000


def synthesis_job_execute(*, tenant_id: int, job_id: int) -> None:
    """Run one job (the actor's body). Idempotent; see the module docstring."""
    job = _start(tenant_id=tenant_id, job_id=job_id)
    if job is None:
        return
    with worker_death_quarantine(suspect=job.worker_deaths > 0):
        _execute(job)


def _execute(job: SynthesisJob) -> None:
    tenant_id, job_id = job.tenant_id, job.pk
    started = time.perf_counter()
    watch = _JobWatch(job)
    outcome = None
    try:
        with _local_file(_conditioning_storage_path(job)) as conditioning:
            if job.mode == SynthesisJob.Mode.STREAM:
                outcome = _run_stream(job, conditioning, watch)
            else:
                outcome = _run_file(job, tenant_id, conditioning, watch)
        # Inside the try: a fault while settling (the database, storage) must not leave the
        # job running under a live worker, where recovery would never look for it.
        _succeed(job, outcome, processing_seconds=time.perf_counter() - started, delivered=watch.delivered)
    except _Stopped as stop:
        _stop(job, reason=stop.reason, delivered=watch.delivered)
    except (ApplicationError, SynthesisFailed, EngineUnavailable) as exc:
        # Permanent: the same input will fail the same way. Fail now, give everything back
        # (a stream pays for what it had sent).
        code = getattr(exc, "code", ErrorCode.SYNTHESIS_FAILED)
        _fail(job, code=str(code), message=getattr(exc, "message", str(exc)), delivered=watch.delivered)
    except (Exception, Interrupt) as exc:
        # Interrupt: the actor's time limit stopped a hung synthesis. Same as any other
        # transient fault: run it again while attempts are left.
        if job.mode == SynthesisJob.Mode.STREAM or job.attempts >= MAX_ATTEMPTS:
            logger.exception("synthesis_job_run.failed", extra={"tenant_id": tenant_id, "job_id": job_id})
            _fail(job, code=ErrorCode.SYNTHESIS_FAILED, message="Synthesis failed; the characters were refunded.",
                  delivered=watch.delivered)
            return
        logger.warning("synthesis_job_run.retry", extra={"tenant_id": tenant_id, "job_id": job_id, "error": repr(exc)})
        requeued = SynthesisJob.objects.for_tenant(tenant_id).filter(
            pk=job_id, status=SynthesisJob.Status.RUNNING).update(status=SynthesisJob.Status.QUEUED)
        if not requeued:  # cancelled meanwhile: nothing left to retry
            _stop(job, reason="cancelled", delivered=watch.delivered)
            return
        raise  # Transient: Dramatiq retries with backoff.
    finally:
        if outcome is not None and isinstance(outcome.data, Path):  # a long render's file, stored by now
            outcome.data.unlink(missing_ok=True)


def _billed_for(job: SynthesisJob, delivered: _Delivered) -> int:
    """The job's billed characters in the share of its text whose audio was delivered."""
    from synthesis.text.ssml import count_characters

    if delivered.characters <= 0 or not job.characters:
        return 0
    prepared = prepare(text=None if job.ssml else job.text, ssml=job.ssml or None, normalize=job.normalize,
                       language=job.language)
    total = sum(count_characters(segment.text) for segment in prepared.segments)
    return min(job.characters, math.ceil(job.characters * delivered.characters / total)) if total else job.characters


def _charge_delivered(job: SynthesisJob, delivered: _Delivered) -> int:
    """Close the holds of a job that stopped early, charging what it delivered (a stream's
    audio sent to its reader), and write that usage. Call with the row locked; returns the
    characters billed. The caller saves the row."""
    billed = _billed_for(job, delivered)
    _release_holds(job, billed=billed)
    if billed:
        job.audio_seconds = round(delivered.seconds, 3)
        usage_record_create(tenant=job.tenant_id, job=job, characters_billed=billed, cached=False,
                            processing_seconds=0.0, model_version=_model_version(job))
    return billed


def _stop(job: SynthesisJob, *, reason: str, delivered: _Delivered) -> None:
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
            _after_finish(locked)
        elif not (locked.status == SynthesisJob.Status.CANCELLED and locked.holds_slot):
            return  # finished some other way, holds closed already
        billed = _charge_delivered(locked, delivered if locked.mode == SynthesisJob.Mode.STREAM else _Delivered())
        locked.save(update_fields=["status", "finished_at", "error_code", "error_message", "holds_slot",
                                   "audio_seconds"])
    transaction.on_commit(lambda: job_event_publish(job_id=job.pk, event=JobEvent("error", info={
        "code": "cancelled", "message": "The job was cancelled."})))
    logger.info("synthesis_job_run.stopped", extra={"tenant_id": job.tenant_id, "job_id": job.pk, "reason": reason,
                                                    "characters_billed": billed})


def _fail(job: SynthesisJob, *, code: str, message: str, delivered: _Delivered | None = None) -> None:
    delivered = delivered if delivered is not None and job.mode == SynthesisJob.Mode.STREAM else _Delivered()
    with transaction.atomic():
        locked = SynthesisJob.objects.for_tenant(job.tenant_id).select_for_update().get(pk=job.pk)
        cancelled = locked.status == SynthesisJob.Status.CANCELLED and locked.holds_slot
        if locked.status == SynthesisJob.Status.RUNNING:
            _fail_locked(locked, code=code, message=message, delivered=delivered)
    if cancelled:  # the tenant cancelled it while it ran: it stopped, whatever the error
        _stop(job, reason="cancelled", delivered=delivered)


def _fail_locked(job: SynthesisJob, *, code: str, message: str, delivered: _Delivered | None = None) -> None:
    """Mark an unfinished job failed and give back its holds (a stream that had sent audio pays
    for what it sent). Call with the row locked."""
    job.status = SynthesisJob.Status.FAILED
    job.error_code, job.error_message = str(code), message
    job.finished_at = timezone.now()
    if _charge_delivered(job, delivered or _Delivered()):
        job.error_message = f"{message} The stream was billed for the audio it had sent."
    job.save(update_fields=["status", "error_code", "error_message", "finished_at", "holds_slot", "audio_seconds"])
    usage_failure_record(tenant=job.tenant_id, job=job)
    _after_finish(job)
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


def _model_version(job: SynthesisJob) -> str:
    """What made the audio: the render's model version, or (streams) the engine's."""
    if job.model_version:
        return job.model_version
    from synthesis.engines.registry import engine_get

    try:
        return engine_get(job.engine).info.model_version
    except EngineUnavailable:
        return ""


# What a "done" event tells of the job besides its status (see synthesis.api.views.wait_for_job).
DONE_FIELDS = ("storage_path", "format", "content_type", "sample_rate", "audio_seconds", "size_bytes", "cache_hit",
               "model_version")


def _succeed(job: SynthesisJob, outcome: _Outcome, *, processing_seconds: float,
             delivered: _Delivered | None = None) -> None:
    """Settle a job that produced audio: in one transaction the job row, its hold, its slot,
    its usage record and (a miss) its cache entry; then the metrics, then "done" (the request
    for its report rollup comes after: nobody waits on it).

    The cache entry is written with the settlement, never before it, so a job whose settling
    failed finds no entry of its own on its retry (it would bill itself nothing)."""
    path = _store_audio(job, outcome.data, outcome.extension)
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
    usage_model_version = outcome.model_version or _model_version(job)
    gpu_seconds = None if outcome.cache_hit else _gpu_seconds(job.engine, processing_seconds)
    rollup_tenant = None  # the ORM path's usage_record_create() asks for the rollup itself
    if settle.available():
        settled = settle.job_settle(
            tenant_id=job.tenant_id, job_id=job.pk, now=timezone.now(), result=result, billed=billed,
            usage_model_version=usage_model_version, gpu_seconds=gpu_seconds,
            cache_row=outcome.cache_draft.row_values(cache_path) if cache_path else None,
        )
        if settled is None or not settled.succeeded:
            _not_settled(job, path, cache_path, outcome.cache_draft, status=settled and settled.status_before,
                         delivered=delivered)
            return
        rollup_tenant = job.tenant_id
        _after_finish(job)
    else:
        with transaction.atomic():
            locked = SynthesisJob.objects.for_tenant(job.tenant_id).select_for_update().get(pk=job.pk)
            if locked.finished:
                _not_settled(job, path, cache_path, outcome.cache_draft, status=locked.status,
                             delivered=delivered)
                return
            _succeed_locked(locked, result, billed=billed, usage_model_version=usage_model_version,
                            gpu_seconds=gpu_seconds)
            if cache_path:
                outcome.cache_draft.insert_row(cache_path)
    synthesis_job_observe(engine=job.engine, processing_seconds=processing_seconds,
                          audio_seconds=outcome.audio_seconds, cache_hit=outcome.cache_hit)
    # Last: a client answered on "done" finds the job settled, its audio in the cache (an
    # identical request right after is a hit) and the metrics counted.
    # It carries what the job row now says of the audio, so the waiting request needs no query.
    job_event_publish(job_id=job.pk, event=JobEvent("done", info={
        "status": SynthesisJob.Status.SUCCEEDED, **{name: result[name] for name in DONE_FIELDS},
    }))
    if rollup_tenant is not None:
        usage_rollup_soon(rollup_tenant)  # its report rows: nobody waits on them
    logger.info("synthesis_job_run.succeeded", extra={
        "tenant_id": job.tenant_id, "job_id": job.pk, "cache_hit": outcome.cache_hit,
        "seconds": processing_seconds,
    })


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
                 status: str | None, delivered: _Delivered | None) -> None:
    """The job was cancelled while it ran (its audio is not kept; it is charged only for
    what a stream had sent), or another run of it (a recovered one) finished first and wrote
    the same file."""
    if status != SynthesisJob.Status.CANCELLED:
        return
    transaction.on_commit(lambda: _delete_file(path))
    if cache_path and not CachedAudio.objects.for_tenant(job.tenant_id).filter(key=draft.key).exists():
        transaction.on_commit(lambda: _delete_file(cache_path))  # no entry shares the file
    _stop(job, reason="cancelled", delivered=delivered or _Delivered())


def _succeed_locked(job: SynthesisJob, result: dict, *, billed: int, usage_model_version: str,
                    gpu_seconds: float | None) -> None:
    """The ORM twin of settle.job_settle (databases other than PostgreSQL). Call with the row locked."""
    for name, value in result.items():
        setattr(job, name, value)
    job.status = SynthesisJob.Status.SUCCEEDED
    job.finished_at = timezone.now()
    if job.reservation_id:
        quota_reservation_settle(tenant=job.tenant_id, reservation_id=job.reservation_id, characters_used=billed)
    if job.holds_slot:
        job_slot_release(tenant=job.tenant_id)
        job.holds_slot = False
    job.save(update_fields=[*result, "status", "finished_at", "holds_slot"])
    usage_record_create(
        tenant=job.tenant_id, job=job, characters_billed=billed, cached=job.cache_hit,
        processing_seconds=job.processing_seconds, model_version=usage_model_version,
        gpu_seconds=gpu_seconds, checked=True,
    )
    _after_finish(job)


def synthesis_jobs_recover_all_tenants(*, broker_lost: bool | None = None) -> int:
    """Re-enqueue jobs whose message or worker was lost. Crosses tenants by design.

    - running, but its worker stopped sending heartbeats (or, run outside a worker, for
      longer than a job may run): the worker died; run it again, unless its workers died
      PARLA_JOB_WORKER_DEATHS times while running it (see _worker_died_locked).
    - queued, when the broker lost its messages (see live.broker_state_age), or enqueued
      longer ago than PARLA_JOB_REQUEUE_SECONDS: send it again (a duplicate is harmless,
      the actor is idempotent).
    A job that has used all its attempts is failed and refunded instead.
    `broker_lost`: what broker_state_age() said this round (asked here when not given; it can
    say so only once, so the upkeep asks once and passes it to each recovery).
    """
    from synthesis.live import broker_state_age

    now = timezone.now()
    stale_queued = now - dt.timedelta(seconds=settings.PARLA_JOB_REQUEUE_SECONDS)
    if broker_lost is None:
        # The broker lost its messages (Redis restarted without persistence, or the embedded
        # process restarted): every queued job needs its message again.
        broker_lost = broker_state_age() == 0.0
    # Heartbeats were lost with it: workers report again within a heartbeat interval (and
    # the upkeep lock keeps others from running sooner), so judge running jobs next time.
    presence_trusted = not broker_lost
    alive = _alive_worker_ids()
    recovered = 0
    candidates = SynthesisJob.objects.filter(
        status__in=[SynthesisJob.Status.RUNNING, SynthesisJob.Status.QUEUED]
    ).exclude(mode=SynthesisJob.Mode.STREAM).values_list("tenant_id", "pk")
    for tenant_id, job_id in candidates.iterator():
        with transaction.atomic():
            job = SynthesisJob.objects.for_tenant(tenant_id).select_for_update(skip_locked=True).filter(pk=job_id).first()
            if job is None:
                continue
            queued = job.status == SynthesisJob.Status.QUEUED
            lost_message = queued and (broker_lost or (job.enqueued_at and job.enqueued_at < stale_queued))
            orphaned = presence_trusted and _orphaned(job, alive)
            if not (lost_message or orphaned):
                continue
            if orphaned and _worker_died_locked(job):
                continue
            if job.attempts >= MAX_ATTEMPTS:
                _fail_locked(job, code=ErrorCode.SYNTHESIS_FAILED,
                             message="The job's worker stopped too often; the characters were refunded.")
                continue
            job.status = SynthesisJob.Status.QUEUED
            job.enqueued_at = now
            job.save(update_fields=["status", "enqueued_at"])
            _enqueue(job)
        logger.info("synthesis_jobs_recover.requeued", extra={"tenant_id": tenant_id, "job_id": job_id})
        recovered += 1
    return recovered


def cancelled_jobs_release_all_tenants() -> int:
    """Close the holds of jobs cancelled while they ran whose worker died before it could
    stop and settle them (a live worker does that itself). Crosses tenants by design."""
    alive = _alive_worker_ids()
    released = 0
    stuck = SynthesisJob.objects.filter(status=SynthesisJob.Status.CANCELLED, holds_slot=True)
    for tenant_id, job_id in stuck.values_list("tenant_id", "pk").iterator():
        with transaction.atomic():
            job = SynthesisJob.objects.for_tenant(tenant_id).select_for_update(skip_locked=True).filter(
                pk=job_id, holds_slot=True).first()
            if job is None or not _worker_gone(job, alive):
                continue
            _release_holds(job)
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
                _fail_locked(job, code=ErrorCode.SYNTHESIS_FAILED,
                             message="The stream was not served in time; nothing was charged.")
                expired += 1
    return expired
