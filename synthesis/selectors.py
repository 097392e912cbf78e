"""Reads for synthesis: the voice a request names, and the tenant's jobs."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from synthesis.engines.registry import catalog_voice_get, engine_get
from synthesis.models import SynthesisJob
from tenants.errors import ApplicationError, ErrorCode, NotFound
from tenants.models import Tenant

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
    profile: Any = None  # the tenant's own voices.VoiceProfile, if it is one

    @property
    def conditioning_path(self) -> str:
        return self.profile.conditioning_path if self.profile and self.profile.kind != "catalog" else ""


def _profile_id(voice: str) -> int | None:
    name = voice.partition(":")[2] if ":" in voice else voice
    if name.startswith(_PROFILE_PREFIX):
        name = name[len(_PROFILE_PREFIX):]
    return int(name) if name.isdigit() and len(name) < 19 else None


@dataclass(frozen=True)
class VoiceDirectory:
    """The tenant's own voices, which the voices app keeps; it registers its functions here in
    VoicesConfig.ready() (voices sits above synthesis, so synthesis never imports it).

    own_voice: (tenant=, profile_id=, voice=) -> ResolvedVoice; raises UnknownVoice, VoiceNotReady.
    voice_options: (tenant=) -> every voice the tenant may pick, catalog then own (the Speak page).
    """

    own_voice: Callable[..., ResolvedVoice]
    voice_options: Callable[..., list]


_directory: list[VoiceDirectory] = []


def voice_directory_register(directory: VoiceDirectory) -> None:
    _directory[:] = [directory]


def voice_directory() -> VoiceDirectory:
    if not _directory:
        raise RuntimeError("No voice directory is registered (is the voices app installed?).")
    return _directory[0]


def speech_voice_resolve(*, tenant: Tenant, voice: str | None) -> ResolvedVoice:
    """The tenant's own voice (by id) or a catalog voice (by id or unambiguous name).

    Another tenant's voice id is answered exactly like an id that does not exist.
    """
    voice = (voice or "").strip() or settings.PARLA_DEFAULT_VOICE
    profile_id = _profile_id(voice)
    if profile_id is not None:
        return voice_directory().own_voice(tenant=tenant, profile_id=profile_id, voice=voice)
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
