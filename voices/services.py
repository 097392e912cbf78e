"""Writes for voice profiles and their reference recordings."""

import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from config.dramatiq import QUEUE_SYNTHESIS_CPU, QUEUE_SYNTHESIS_GPU
from synthesis.engines.registry import catalog_voice_get, engine_get, engine_list
from synthesis.errors import EngineUnavailable
from tenants.errors import ApplicationError
from tenants.models import Tenant
from tenants.services import SYSTEM, AuditContext, audit_event_record
from voices.enrollment_jobs import enrollment_start, enrollments_cancel_queued
from voices.errors import AudioTooLarge, PlanLimitReached
from voices.models import VoiceProfile, VoiceReference

logger = logging.getLogger(__name__)

CLONING_ENGINES = ("xtts",)
MATCHING_ENGINE = "kokoro"


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str = ""


def uploads_read(files, *, max_bytes: int) -> list[Upload]:
    """Uploaded files' bytes, for the services to validate; AudioTooLarge for a file over the limit.

    The size Django measured while receiving the file is checked before any byte is read, and
    at most one byte past the plan's limit is read, so an oversized file is never held whole.
    """
    uploads = []
    for index, upload in enumerate(files):
        declared = getattr(upload, "size", None)
        if declared is not None and declared > max_bytes:
            raise _too_large(upload, index, max_bytes)
        data = upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise _too_large(upload, index, max_bytes)
        uploads.append(Upload(data=data, filename=upload.name or ""))
    return uploads


def voice_references_read(*, tenant: Tenant, files, profile: VoiceProfile | None = None) -> list[Upload]:
    """A request's reference recordings, read only once the plan allows that many of them.

    SECURITY: the files are counted (with the voice's existing references) and sized before
    one byte is read or decoded, so a request with more recordings than the plan allows costs
    no more than the refusal. The services check again under the tenant lock.
    """
    files = list(files)
    if profile is not None:
        _check_takes_references(profile)
    existing = profile.references.count() if profile is not None else 0
    _check_reference_count(tenant.plan, existing + len(files))
    return uploads_read(files, max_bytes=tenant.plan.upload_bytes)


def _too_large(upload, index: int, max_bytes: int) -> AudioTooLarge:
    return AudioTooLarge(
        f"The file is larger than this plan's limit of {max_bytes / 1_000_000:g} MB.",
        extra={"limit": max_bytes, "file_index": index, "filename": upload.name or ""},
    )


def _lock_tenant(tenant: Tenant) -> Tenant:
    # Counting profiles and then creating one must not race with another request doing the
    # same, or two requests could both pass the plan's limit.
    return Tenant.objects.select_for_update().select_related("plan").get(pk=tenant.pk)


def _choose_engine(engine: str) -> tuple[str, str]:
    """(engine, kind) for a voice made from references: clone where possible, else match."""
    enabled = {e.name for e in engine_list()}
    if engine == "auto":
        cloning = next((name for name in CLONING_ENGINES if name in enabled), None)
        if cloning:
            return cloning, VoiceProfile.Kind.CLONED
        if MATCHING_ENGINE in enabled:
            return MATCHING_ENGINE, VoiceProfile.Kind.MATCHED
        raise EngineUnavailable(
            "No engine here can clone or match a voice; enable xtts or kokoro.",
            extra={"engine": "auto"},
        )
    engine_get(engine)  # Raises for an engine that is not enabled.
    if engine in CLONING_ENGINES:
        return engine, VoiceProfile.Kind.CLONED
    if engine == MATCHING_ENGINE:
        return engine, VoiceProfile.Kind.MATCHED
    raise ApplicationError(
        f"The {engine} engine cannot learn a voice from recordings.",
        extra={"fields": {"engine": [f"Use auto, {', '.join(CLONING_ENGINES)} or {MATCHING_ENGINE}."]}},
    )


def _validate_uploads(uploads: list[Upload], *, max_bytes: int) -> list[tuple[Any, Any]]:
    """Decode and check every upload before anything is stored; the first bad file fails all."""
    from voices.audio_checks import reference_quality_report, reference_validate

    checked = []
    for index, upload in enumerate(uploads):
        try:
            reference = reference_validate(upload.data, filename=upload.filename, max_bytes=max_bytes)
        except ApplicationError as exc:
            exc.extra = {**exc.extra, "file_index": index}
            raise
        checked.append((reference, reference_quality_report(reference)))
    return checked


def _store_references(profile: VoiceProfile, checked, stored_paths: list[str]) -> list[VoiceReference]:
    references = []
    for reference, report in checked:
        # A server-made name: nothing of the uploaded file name reaches the storage path.
        path = f"tenants/{profile.tenant_id}/voices/{profile.pk}/references/{uuid.uuid4().hex}.wav"
        saved = default_storage.save(path, ContentFile(reference.wav_bytes))
        stored_paths.append(saved)
        references.append(
            VoiceReference.objects.create(
                tenant_id=profile.tenant_id,
                profile=profile,
                storage_path=saved,
                speech_seconds=reference.speech_seconds,
                duration_seconds=reference.duration_seconds,
                sample_rate=reference.sample_rate,
                source_format=reference.source_format,
                source_sample_rate=reference.source_sample_rate,
                source_channels=reference.source_channels,
                size_bytes=len(reference.wav_bytes),
                checksum=reference.checksum,
                quality=report.as_dict(),
            )
        )
    return references


def _delete_files(paths: list[str]) -> None:
    for path in paths:
        try:
            default_storage.delete(path)
        except OSError:
            logger.warning("voices.delete_file_failed", extra={"path": path})


def _enqueue_enrollment(*, tenant: Tenant, profile: VoiceProfile, context: AuditContext) -> None:
    """Start the voice's enrollment: the plan's enrollments a day and a concurrent-job slot are
    checked before anything is stored, so call it before the references are written. Needs the
    tenant row, then the profile row, locked."""
    engine = engine_get(profile.engine)
    # GPU hosts consume only synthesis-gpu: the message is routed by the engine's needs.
    queue = QUEUE_SYNTHESIS_GPU if engine.info.needs_gpu else QUEUE_SYNTHESIS_CPU
    enrollment_start(tenant=tenant, profile=profile, queue_name=queue, context=context)


def voice_profile_create(
    *,
    tenant: Tenant,
    name: str,
    language: str = "en-US",
    description: str = "",
    gender: str = "",
    age: str = "",
    engine: str = "auto",
    base_voice_id: str = "",
    uploads: list[Upload] | None = None,
    context: AuditContext = SYSTEM,
) -> VoiceProfile:
    """A preset over a catalog voice (base_voice_id), or a voice learnt from recordings."""
    uploads = uploads or []
    if base_voice_id and uploads:
        raise ApplicationError(
            "A preset of a catalog voice takes no recordings.",
            extra={"fields": {"references": ["Leave out references when base_voice_id is set."]}},
        )
    if not base_voice_id and not uploads:
        raise ApplicationError(
            "Upload at least one reference recording, or name a catalog voice as base_voice_id.",
            extra={"fields": {"references": ["At least one recording is required."]}},
        )
    if base_voice_id:
        base = catalog_voice_get(base_voice_id)
        engine_name, kind, checked = base.engine, VoiceProfile.Kind.CATALOG, []
    else:
        engine_name, kind = _choose_engine(engine)
        # Every plan limit is checked before the first file is decoded (and again under the lock).
        _check_limits(tenant=tenant, kind=kind, new_references=len(uploads))
        checked = _validate_uploads(uploads, max_bytes=tenant.plan.upload_bytes)

    stored_paths: list[str] = []
    try:
        with transaction.atomic():
            locked = _lock_tenant(tenant)
            plan = locked.plan
            _check_limits(tenant=locked, kind=kind, new_references=len(checked))
            if VoiceProfile.objects.for_tenant(locked).filter(name=name).exists():
                raise ApplicationError(
                    "A voice with this name already exists.",
                    extra={"fields": {"name": ["A voice with this name already exists."]}},
                )
            profile = VoiceProfile(
                tenant=locked,
                name=name,
                description=description,
                language=language,
                gender=gender,
                age=age,
                kind=kind,
                engine=engine_name,
                base_voice_id=base_voice_id and catalog_voice_get(base_voice_id).id,
                status=(VoiceProfile.Status.READY if kind == VoiceProfile.Kind.CATALOG
                        else VoiceProfile.Status.ENROLLING),
                created_by=context.user,
            )
            profile.full_clean(validate_constraints=False)
            profile.save()
            if kind != VoiceProfile.Kind.CATALOG:
                _enqueue_enrollment(tenant=locked, profile=profile, context=context)
            _store_references(profile, checked, stored_paths)
            audit_event_record(
                tenant=locked, action="voice.created", context=context, obj=profile,
                extra={"kind": kind, "engine": engine_name, "references": len(checked), "plan": plan.slug},
            )
    except Exception:
        _delete_files(stored_paths)  # Nothing of a refused request stays behind.
        raise
    return profile


def _check_limits(*, tenant: Tenant, kind: str, new_references: int, profile: VoiceProfile | None = None) -> None:
    plan = tenant.plan
    profiles = VoiceProfile.objects.for_tenant(tenant)
    if profile is None:
        if profiles.count() >= plan.voices:
            raise PlanLimitReached(
                f"The {plan.name} plan allows {plan.voices} voices.",
                extra={"limit": plan.voices, "limit_name": "voices"},
            )
        learnt = profiles.exclude(kind=VoiceProfile.Kind.CATALOG).count()
        if kind != VoiceProfile.Kind.CATALOG and learnt >= plan.cloned_voices:
            raise PlanLimitReached(
                f"The {plan.name} plan allows {plan.cloned_voices} cloned or matched voices.",
                extra={"limit": plan.cloned_voices, "limit_name": "cloned_voices"},
            )
    existing = profile.references.count() if profile is not None else 0
    _check_reference_count(plan, existing + new_references)


def _check_reference_count(plan, count: int) -> None:
    if count > plan.references_per_voice:
        raise PlanLimitReached(
            f"The {plan.name} plan allows {plan.references_per_voice} recordings per voice.",
            extra={"limit": plan.references_per_voice, "limit_name": "references_per_voice"},
        )


def _check_takes_references(profile: VoiceProfile) -> None:
    if profile.kind == VoiceProfile.Kind.CATALOG:
        raise ApplicationError("A preset of a catalog voice takes no recordings.")


@transaction.atomic
def voice_profile_update(
    *, tenant: Tenant, profile: VoiceProfile, context: AuditContext = SYSTEM, **changes
) -> VoiceProfile:
    """Name, description and labels only: tenant, kind and engine never change."""
    allowed = {"name", "description", "language", "gender", "age"}
    if unknown := set(changes) - allowed:
        raise ApplicationError(
            "These fields cannot be changed.", extra={"fields": {name: ["Read-only."] for name in sorted(unknown)}}
        )
    profile = VoiceProfile.objects.for_tenant(tenant).select_for_update().get(pk=profile.pk)
    same_name = VoiceProfile.objects.for_tenant(tenant).filter(name=changes.get("name")).exclude(pk=profile.pk)
    if "name" in changes and same_name.exists():
        raise ApplicationError(
            "A voice with this name already exists.",
            extra={"fields": {"name": ["A voice with this name already exists."]}},
        )
    for field, value in changes.items():
        setattr(profile, field, value)
    profile.full_clean(validate_constraints=False)
    profile.save()
    audit_event_record(tenant=tenant, action="voice.updated", context=context, obj=profile,
                       extra={"fields": sorted(changes)})
    return profile


def voice_profile_delete(*, tenant: Tenant, profile: VoiceProfile, context: AuditContext = SYSTEM) -> None:
    with transaction.atomic():
        profile = VoiceProfile.objects.for_tenant(tenant).select_for_update().get(pk=profile.pk)
        enrollments_cancel_queued(tenant=tenant, profile=profile)  # their slots come back
        paths = list(
            VoiceReference.objects.for_tenant(tenant).filter(profile=profile).values_list("storage_path", flat=True)
        )
        if profile.conditioning_path:
            paths.append(profile.conditioning_path)
        audit_event_record(tenant=tenant, action="voice.deleted", context=context, obj=profile)
        profile.delete()
    _delete_files(paths)  # After commit: a rolled-back delete keeps its files.


def voice_reference_add(
    *, tenant: Tenant, profile: VoiceProfile, uploads: list[Upload], context: AuditContext = SYSTEM
) -> list[VoiceReference]:
    _check_takes_references(profile)
    _check_limits(tenant=tenant, kind=profile.kind, new_references=len(uploads), profile=profile)
    checked = _validate_uploads(uploads, max_bytes=tenant.plan.upload_bytes)
    stored_paths: list[str] = []
    try:
        with transaction.atomic():
            locked = _lock_tenant(tenant)
            profile = VoiceProfile.objects.for_tenant(locked).select_for_update().get(pk=profile.pk)
            _check_limits(tenant=locked, kind=profile.kind, new_references=len(checked), profile=profile)
            _enqueue_enrollment(tenant=locked, profile=profile, context=context)  # New recordings: enrol again.
            references = _store_references(profile, checked, stored_paths)
            profile.status = VoiceProfile.Status.ENROLLING
            profile.save(update_fields=["status", "updated_at"])
            for reference in references:
                audit_event_record(tenant=locked, action="voice.reference_added", context=context, obj=reference,
                                   extra={"voice": profile.pk})
    except Exception:
        _delete_files(stored_paths)
        raise
    return references


def voice_reference_delete(
    *, tenant: Tenant, reference: VoiceReference, context: AuditContext = SYSTEM
) -> None:
    with transaction.atomic():
        # The tenant first, as every service that starts an enrollment locks it (the day's count).
        locked = _lock_tenant(tenant)
        reference = VoiceReference.objects.for_tenant(tenant).select_for_update().get(pk=reference.pk)
        profile = VoiceProfile.objects.for_tenant(tenant).select_for_update().get(pk=reference.profile_id)
        if profile.references.count() <= 1:
            raise ApplicationError(
                "A voice needs at least one recording; delete the voice instead.",
                extra={"fields": {"reference": ["This is the voice's last recording."]}},
            )
        _enqueue_enrollment(tenant=locked, profile=profile, context=context)
        path = reference.storage_path
        audit_event_record(tenant=tenant, action="voice.reference_removed", context=context, obj=reference,
                           extra={"voice": profile.pk})
        reference.delete()
        profile.status = VoiceProfile.Status.ENROLLING
        profile.save(update_fields=["status", "updated_at"])
    _delete_files([path])


def conditioning_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
