"""Reads for voices: the engines' catalog and the tenant's own profiles."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from synthesis.engines.base import Licence
from synthesis.engines.registry import catalog_voice_get, catalog_voices, engine_get
from synthesis.errors import EngineUnavailable, UnknownVoice
from synthesis.selectors import ResolvedVoice, VoiceNotReady
from tenants.errors import NotFound
from tenants.models import Tenant
from voices.models import VoiceProfile, VoiceReference


def voice_profile_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[VoiceProfile]:
    filters = filters or {}
    qs = VoiceProfile.objects.for_tenant(tenant).prefetch_related("references")
    if filters.get("language"):
        qs = qs.filter(language__istartswith=filters["language"])
    if filters.get("engine"):
        qs = qs.filter(engine=filters["engine"])
    if filters.get("kind"):
        qs = qs.filter(kind=filters["kind"])
    return qs


def own_voice_resolve(*, tenant: Tenant, profile_id: int, voice: str) -> ResolvedVoice:
    """The tenant's voice profile `profile_id` (named `voice` in the request), ready to speak:
    what synthesis.selectors.speech_voice_resolve answers for an own voice."""
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


def voice_profile_get(*, tenant: Tenant, voice_profile_id: int) -> VoiceProfile:
    profile = VoiceProfile.objects.for_tenant(tenant).prefetch_related("references").filter(pk=voice_profile_id).first()
    if profile is None:
        raise NotFound()
    return profile


def voice_reference_get(*, tenant: Tenant, profile: VoiceProfile, reference_id: int) -> VoiceReference:
    reference = VoiceReference.objects.for_tenant(tenant).filter(profile=profile, pk=reference_id).first()
    if reference is None:
        raise NotFound()
    return reference


def engine_licence(engine: str) -> Licence | None:
    try:
        return engine_get(engine).info.licence
    except EngineUnavailable:
        return None  # The engine was switched off after the voice was made.


@dataclass(frozen=True)
class VoiceListItem:
    id: str
    name: str
    kind: str
    engine: str
    language: str
    licence: str
    commercial_use: bool
    status: str
    description: str
    own: bool
    created_at: datetime | None = None


def voice_list(*, tenant: Tenant, filters: dict | None = None) -> list[VoiceListItem]:
    """Catalog voices (global, read-only) then the tenant's own, with licences on every row."""
    filters = filters or {}
    items = []
    if filters.get("kind") in (None, "", "catalog"):
        for voice in catalog_voices():
            if filters.get("language") and not voice.language.lower().startswith(filters["language"].lower()):
                continue
            if filters.get("engine") and voice.engine != filters["engine"]:
                continue
            items.append(VoiceListItem(
                id=voice.id, name=voice.name, kind="catalog", engine=voice.engine, language=voice.language,
                licence=voice.licence.name, commercial_use=voice.licence.commercial_use, status="ready",
                description=voice.description, own=False,
            ))
    for profile in voice_profile_list(tenant=tenant, filters=filters):
        licence = engine_licence(profile.engine)
        items.append(VoiceListItem(
            id=str(profile.pk), name=profile.name, kind=profile.kind, engine=profile.engine,
            language=profile.language, licence=licence.name if licence else "",
            commercial_use=licence.commercial_use if licence else False, status=profile.status,
            description=profile.description, own=True, created_at=profile.created_at,
        ))
    return items


def voice_profile_counts(*, tenant: Tenant) -> dict[str, int]:
    """How many own voices the tenant has, and how many of them are learnt from recordings."""
    profiles = VoiceProfile.objects.for_tenant(tenant)
    return {"voices": profiles.count(), "learnt": profiles.exclude(kind=VoiceProfile.Kind.CATALOG).count()}
