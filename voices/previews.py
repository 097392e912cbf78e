"""Voice previews: a short sample of a voice, made once per voice (and enrollment) and format,
then served as it is. /api/v1/voices/<id>/preview and the Voices pages both get theirs here
and differ only in how they answer while it is not ready.

A preview is a synthesis job, created, waited for and stored like any other, through
synthesis.jobs' public functions (voices sits above synthesis).
"""

from django.conf import settings

from synthesis.api.responses import wait_for_job
from synthesis.audio import AudioOptions
from synthesis.jobs import PREVIEW_TEXT, synthesis_job_create, waiting_for_worker
from synthesis.models import SynthesisJob
from synthesis.selectors import ResolvedVoice
from tenants.errors import ApplicationError
from tenants.models import ApiKey, Tenant
from voices.models import VoiceProfile

PREVIEW_FORMATS = ("mp3", "wav", "opus")


def preview_format_check(audio_format: str) -> str:
    if audio_format not in PREVIEW_FORMATS:
        raise ApplicationError(f"Previews come as {', '.join(PREVIEW_FORMATS)}.",
                               extra={"fields": {"format": ["Unsupported."]}})
    return audio_format


def voice_preview_get(*, tenant: Tenant, profile: VoiceProfile, audio_format: str) -> SynthesisJob | None:
    """The preview already made for the profile as it is now (same enrollment), if any."""
    return (
        SynthesisJob.objects.for_tenant(tenant)
        .filter(mode=SynthesisJob.Mode.PREVIEW, voice_profile=profile, status=SynthesisJob.Status.SUCCEEDED,
                audio_options__format=audio_format, audio_deleted_at__isnull=True, created_at__gte=profile.updated_at)
        .order_by("-created_at")
        .first()
    )


def catalog_voice_preview_get(*, tenant: Tenant, voice_id: str, audio_format: str) -> SynthesisJob | None:
    """The preview of a catalog voice already made for this tenant in this format, if any."""
    return (
        SynthesisJob.objects.for_tenant(tenant)
        .filter(mode=SynthesisJob.Mode.PREVIEW, voice_profile__isnull=True, voice_id=voice_id,
                status=SynthesisJob.Status.SUCCEEDED, audio_options__format=audio_format,
                audio_deleted_at__isnull=True)
        .order_by("-created_at")
        .first()
    )


def voice_preview_get_or_create(
    *,
    tenant: Tenant,
    voice: ResolvedVoice,
    audio_format: str,
    created_by=None,
    api_key: ApiKey | None = None,
    wait_seconds: float | None = None,
) -> SynthesisJob:
    """The voice's preview in this format: the one made before, else a new preview job, waited
    for up to `wait_seconds` (PARLA_SYNC_WAIT_SECONDS by default) unless no worker serves it.

    The job comes back as it is then; the caller answers with its audio, its error, or "still
    being made". Previews are not billed (synthesis.jobs.create)."""
    if voice.profile is not None:
        made = voice_preview_get(tenant=tenant, profile=voice.profile, audio_format=audio_format)
    else:
        made = catalog_voice_preview_get(tenant=tenant, voice_id=voice.voice_id, audio_format=audio_format)
    if made is not None:
        return made
    job = synthesis_job_create(
        tenant=tenant, voice=voice, mode=SynthesisJob.Mode.PREVIEW, text=PREVIEW_TEXT,
        audio=AudioOptions(format=audio_format), api_key=api_key, created_by=created_by,
    )
    if not waiting_for_worker(job):
        job = wait_for_job(job, timeout=settings.PARLA_SYNC_WAIT_SECONDS if wait_seconds is None else wait_seconds)
    return job
