"""Creating jobs: every limit checked, the hold and the slot taken, the row written, the
message sent after commit. The only code that writes new SynthesisJob rows (batches ask
jobs_create_for_batch)."""

import dataclasses
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.dramatiq import QUEUE_SYNTHESIS_CPU, QUEUE_SYNTHESIS_GPU
from config.runtime.events import stream_reader_mark
from config.runtime.presence import queue_has_worker
from synthesis.audio import AudioOptions
from synthesis.errors import AudioTooLongRequested, EngineUnavailable
from synthesis.jobs import commits
from synthesis.models import SynthesisJob
from synthesis.selectors import ResolvedVoice, speech_voice_resolve
from synthesis.text import PreparedText, prepare
from tenants.errors import ApplicationError, ErrorCode
from tenants.models import ApiKey, Tenant
from tenants.quotas import (
    job_admit,
    job_slot_acquire,
)

logger = logging.getLogger(__name__)


PREVIEW_TEXT = "Hello! This is a short preview of my voice, reading a sentence for you."


class TextTooLong(ApplicationError):
    code = ErrorCode.TEXT_TOO_LONG
    status = 400


@dataclasses.dataclass(frozen=True)
class JobPlan:
    """What synthesis_job_create decided: the voice that will speak, and why."""

    voice: ResolvedVoice
    queue_name: str
    fallback_used: bool
    requested_voice_id: str


def queue_for(voice: ResolvedVoice) -> str:
    return QUEUE_SYNTHESIS_GPU if voice.needs_gpu else QUEUE_SYNTHESIS_CPU


def synthesis_job_plan(*, tenant: Tenant, voice: ResolvedVoice, fallback: bool = False) -> JobPlan:
    """Route to the queue the engine needs; with `fallback`, serve from the default voice
    when that queue has no worker instead of waiting for one."""
    queue_name = queue_for(voice)
    if fallback and queue_name == QUEUE_SYNTHESIS_GPU and not queue_has_worker(queue_name):
        default = speech_voice_resolve(tenant=tenant, voice=settings.PARLA_DEFAULT_VOICE)
        return JobPlan(voice=default, queue_name=queue_for(default), fallback_used=True,
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
        raise AudioTooLongRequested(
            f"This request would make at least {estimate:,.0f} seconds of audio (pauses included); "
            f"the {tenant.plan.name} plan allows {limit:,} seconds per request.",
            extra={"estimated_seconds": round(estimate, 1), "limit_seconds": limit},
        )


def enqueue(job: SynthesisJob) -> None:
    from synthesis.tasks.actors import synthesis_job_run as synthesis_job_run_actor

    # GPU hosts consume only synthesis-gpu: the message goes to the queue the engine needs. A
    # job whose worker died while running it runs alone (synthesis.jobs.execute).
    suspect = {"suspect": True} if job.worker_deaths else {}
    message = synthesis_job_run_actor.message(job.tenant_id, job.pk, **suspect).copy(queue_name=job.queue_name)
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

    with commits.job_transaction():
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
        enqueue(job)
    logger.info(
        "synthesis_job_create.created",
        extra={"tenant_id": tenant.pk, "job_id": job.pk, "mode": mode, "queue": job.queue_name,
               "characters": characters, "fallback": plan.fallback_used},
    )
    return job


@dataclasses.dataclass(frozen=True)
class BatchJobSpec:
    """One batch item, checked by batches (text, voice, limits): what its job will say."""

    index: int
    filename: str
    voice: ResolvedVoice
    text: str
    ssml: str
    characters: int


def jobs_create_for_batch(*, tenant: Tenant, batch, items: list[BatchJobSpec], audio: AudioOptions,
                          language: str | None, normalize: bool, api_key: ApiKey | None = None) -> list[int]:
    """The queued jobs of a batch's items, written in bulk inside the caller's transaction
    (which holds the batch's quota and slot); returns their ids. Their messages are sent by
    jobs_enqueue_queued(), so thousands of items do not hold up the request."""
    now = timezone.now()
    jobs = SynthesisJob.objects.bulk_create([
        SynthesisJob(
            tenant=tenant, mode=SynthesisJob.Mode.BATCH, api_key=api_key, batch=batch, batch_index=item.index,
            filename=item.filename, voice_profile=item.voice.profile, voice_id=item.voice.voice_id,
            engine=item.voice.engine, queue_name=queue_for(item.voice), text=item.text, ssml=item.ssml,
            language=language or item.voice.language.split("-")[0] or "en", normalize=normalize,
            audio_options=dataclasses.asdict(audio), characters=item.characters,
            audio_seconds_limit=tenant.plan.max_audio_seconds_per_request, enqueued_at=now,
        )
        for item in items
    ], batch_size=500)
    return [job.pk for job in jobs]


def jobs_enqueue_queued(*, tenant_id: int, batch_id: int) -> int:
    """Send the messages of a batch's queued jobs now (a duplicate is harmless); their count."""
    sent = 0
    queued = SynthesisJob.objects.for_tenant(tenant_id).filter(batch_id=batch_id, status=SynthesisJob.Status.QUEUED)
    for job in queued.order_by("batch_index").iterator(chunk_size=500):
        enqueue(job)  # Outside a transaction: sent at once.
        sent += 1
    return sent


def batch_jobs_requeue_failed(*, tenant: Tenant, batch_id: int) -> int:
    """Make a batch's failed jobs queued again, as new (attempts and deaths start over); call
    inside the transaction that holds their characters again. Their count."""
    return SynthesisJob.objects.for_tenant(tenant).filter(batch_id=batch_id, status=SynthesisJob.Status.FAILED).update(
        status=SynthesisJob.Status.QUEUED, attempts=0, worker_deaths=0, error_code="", error_message="",
        finished_at=None, started_at=None, worker_id="", enqueued_at=timezone.now())
