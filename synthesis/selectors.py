"""Reads for synthesis: the voice a request names, and the tenant's jobs."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from synthesis.engines.registry import catalog_voice_get, engine_get
from synthesis.errors import UnknownVoice
from synthesis.models import SynthesisJob
from tenants.errors import ApplicationError, ErrorCode, NotFound
from tenants.models import Tenant
from voices.models import VoiceProfile

# "12", "profile-12" and "<engine>:profile-12" all name the tenant's voice profile 12.
_PROFILE_PREFIX = "profile-"


class VoiceNotReady(ApplicationError):
    code = ErrorCode.VOICE_NOT_READY
    status = 409


@dataclass(frozen=True)
class ResolvedVoice:
    """A voice a request may use, found without loading any model."""

    voice_id: str  # as synthesis names it: "piper:en_US-joe-medium", "kokoro:profile-7"
    engine: str
    language: str
    needs_gpu: bool
    profile: VoiceProfile | None = None

    @property
    def conditioning_path(self) -> str:
        return self.profile.conditioning_path if self.profile and self.profile.kind != "catalog" else ""


def _profile_id(voice: str) -> int | None:
    name = voice.partition(":")[2] if ":" in voice else voice
    if name.startswith(_PROFILE_PREFIX):
        name = name[len(_PROFILE_PREFIX):]
    return int(name) if name.isdigit() and len(name) < 19 else None


def speech_voice_resolve(*, tenant: Tenant, voice: str | None) -> ResolvedVoice:
    """The tenant's own voice (by id) or a catalog voice (by id or unambiguous name).

    Another tenant's voice id is answered exactly like an id that does not exist.
    """
    voice = (voice or "").strip() or settings.PARLA_DEFAULT_VOICE
    profile_id = _profile_id(voice)
    if profile_id is not None:
        profile = VoiceProfile.objects.for_tenant(tenant).filter(pk=profile_id).first()
        if profile is None:
            raise UnknownVoice(f"Unknown voice {voice!r}.", extra={"voice": voice})
        if profile.status != VoiceProfile.Status.READY:
            raise VoiceNotReady(
                f"The voice {profile.name!r} is {profile.status}; it can speak once enrollment is ready.",
                extra={"voice": str(profile.pk), "status": profile.status, "error": profile.error},
            )
        engine = engine_get(profile.engine)  # EngineUnavailable: its engine is not installed here.
        if profile.kind == VoiceProfile.Kind.CATALOG:
            base = catalog_voice_get(profile.base_voice_id)
            return ResolvedVoice(
                voice_id=base.id, engine=base.engine, language=profile.language,
                needs_gpu=engine.info.needs_gpu, profile=profile,
            )
        return ResolvedVoice(
            voice_id=profile.voice_id, engine=profile.engine, language=profile.language,
            needs_gpu=engine.info.needs_gpu, profile=profile,
        )
    info = catalog_voice_get(voice)
    return ResolvedVoice(
        voice_id=info.id, engine=info.engine, language=info.language,
        needs_gpu=engine_get(info.engine).info.needs_gpu,
    )


def synthesis_job_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[SynthesisJob]:
    filters = filters or {}
    # Previews and batch items have their own views (the voice, the batch's items).
    qs = SynthesisJob.objects.for_tenant(tenant).exclude(mode__in=[SynthesisJob.Mode.PREVIEW, SynthesisJob.Mode.BATCH])
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("voice"):
        voice = filters["voice"]
        profile_id = _profile_id(voice)
        qs = qs.filter(voice_profile_id=profile_id) if profile_id is not None else qs.filter(voice_id=voice)
    if filters.get("created_after"):
        qs = qs.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        qs = qs.filter(created_at__lt=filters["created_before"])
    return qs


def synthesis_job_get(*, tenant: Tenant | int, job_id: int) -> SynthesisJob:
    job = SynthesisJob.objects.for_tenant(tenant).filter(pk=job_id).first()
    if job is None:
        raise NotFound()
    return job


def as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time.min, tzinfo=dt.UTC)
