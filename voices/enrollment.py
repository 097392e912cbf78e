"""Enrollment: turn a profile's recordings into something an engine can speak with, once.

- Cloned (XTTS): speaker latents computed from all recordings and stored beside the profile.
- Matched (Kokoro, where no cloning engine runs): voices.matching searches mixes of the
  bundled style packs plus random timbre directions for the pack whose speech is closest to
  the recordings by speaker-embedding similarity (Resemblyzer, cosine), with a Whisper
  word-error-rate gate so the voice stays intelligible. The pack is stored as the profile's;
  similarity and WER (against the best plain catalog pack) are kept with the profile: a
  matched voice is an approximation and says so. The search takes minutes on a CPU, so it
  reports its progress into the profile while it runs.
"""

import logging
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from synthesis.engines.registry import loaded_engine
from voices.matching import MatchingUnavailable, match_voice
from voices.models import VoiceProfile, VoiceReference
from voices.services import conditioning_digest

logger = logging.getLogger(__name__)

MATCH_SEED = 0  # Fixed: the same recordings always give the same voice.
PROGRESS_SECONDS = 2.0
SEARCH_SHARE = 0.95  # of the progress bar; the rest is storing the pack


class EnrollmentFailed(Exception):
    """A permanent failure: the profile is marked failed with this message."""


def _local_references(profile: VoiceProfile, folder: Path) -> list[Path]:
    paths = []
    references = VoiceReference.objects.for_tenant(profile.tenant_id).filter(profile=profile)
    for reference in references:
        local = folder / f"{reference.pk}.wav"
        with default_storage.open(reference.storage_path, "rb") as handle:
            local.write_bytes(handle.read())
        paths.append(local)
    if not paths:
        raise EnrollmentFailed("The voice has no recordings.")
    return paths


def _store(profile: VoiceProfile, name: str, data: bytes) -> tuple[str, str]:
    path = f"tenants/{profile.tenant_id}/voices/{profile.pk}/{name}"
    if default_storage.exists(path):
        default_storage.delete(path)
    return default_storage.save(path, ContentFile(data)), conditioning_digest(data)


def _enroll_cloned(profile: VoiceProfile, references: list[Path], folder: Path) -> tuple[str, str, dict]:
    engine = loaded_engine(profile.engine)
    local = folder / "conditioning.pth"
    engine.save_conditioning(engine.compute_conditioning(references), local)
    path, digest = _store(profile, "conditioning.pth", local.read_bytes())
    return path, digest, {"method": "xtts_latents", "references": len(references)}


class _ProgressReporter:
    """Writes {"stage", "progress"} into the enrolling profile's `enrollment`, at most every
    PROGRESS_SECONDS, so a client polling the voice sees the search move without a write per step."""

    def __init__(self, profile: VoiceProfile) -> None:
        self.tenant_id, self.profile_id = profile.tenant_id, profile.pk
        self.last = float("-inf")

    def __call__(self, stage: str, progress: float, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        # Scoped to the tenant and to a profile still enrolling: a deleted or re-enrolled voice
        # is left alone, like _finish() does.
        VoiceProfile.objects.for_tenant(self.tenant_id).filter(
            pk=self.profile_id, status=VoiceProfile.Status.ENROLLING
        ).update(enrollment={"stage": stage, "progress": round(progress, 3)}, updated_at=timezone.now())


def _enroll_matched(profile: VoiceProfile, references: list[Path], folder: Path) -> tuple[str, str, dict]:
    import soundfile as sf

    report = _ProgressReporter(profile)
    report("preparing", 0.0, force=True)
    started = time.monotonic()
    engine = loaded_engine(profile.engine)
    clips = [sf.read(path, dtype="float32") for path in references]

    def searched(done: int, total: int) -> None:
        report("searching", SEARCH_SHARE * done / total)

    try:
        result = match_voice(
            clips, engine=engine, budget=settings.PARLA_MATCH_EVALUATIONS, seed=MATCH_SEED, progress=searched
        )
    except MatchingUnavailable as exc:
        raise EnrollmentFailed(str(exc)) from exc
    report("storing", SEARCH_SHARE, force=True)
    path, digest = _store(profile, "pack.npz", result.conditioning())
    return path, digest, {
        "method": "kokoro_pack_search",
        "approximation": True,
        "stage": "ready",
        "progress": 1.0,
        "similarity": round(result.similarity, 4),
        "baseline_similarity": round(result.baseline_similarity, 4),
        "base_pack": result.base_pack,
        "weights": result.weights,
        "validation_similarity": (None if result.validation_similarity is None
                                  else round(result.validation_similarity, 4)),
        "equalizer_db": result.equalizer_limit,
        "wer": None if result.wer is None else round(result.wer, 4),
        "baseline_wer": None if result.baseline_wer is None else round(result.baseline_wer, 4),
        "evaluations": result.evaluations,
        "rejected": result.rejected,
        "candidates": {name: round(score, 4) for name, score in result.catalog.items()},
        "seconds": round(time.monotonic() - started, 1),
    }


def voice_profile_enroll_execute(*, tenant_id: int, profile_id: int) -> None:
    """Idempotent: a profile that is gone or no longer enrolling is left alone."""
    profile = VoiceProfile.objects.for_tenant(tenant_id).filter(pk=profile_id).first()
    if profile is None:
        logger.info("voice_profile_enroll.missing", extra={"tenant_id": tenant_id, "profile_id": profile_id})
        return
    if profile.status != VoiceProfile.Status.ENROLLING:
        return
    try:
        with tempfile.TemporaryDirectory(prefix="parla-enroll-") as tmp:
            folder = Path(tmp)
            references = _local_references(profile, folder)
            enroll = _enroll_cloned if profile.kind == VoiceProfile.Kind.CLONED else _enroll_matched
            path, digest, findings = enroll(profile, references, folder)
    except EnrollmentFailed as exc:
        _finish(tenant_id, profile_id, status=VoiceProfile.Status.FAILED, error=str(exc))
        return
    _finish(tenant_id, profile_id, status=VoiceProfile.Status.READY, path=path, digest=digest, findings=findings)
    logger.info("voice_profile_enroll.ready", extra={"tenant_id": tenant_id, "profile_id": profile_id, **findings})


def _finish(tenant_id: int, profile_id: int, *, status: str, path: str = "", digest: str = "",
            findings: dict | None = None, error: str = "") -> None:
    with transaction.atomic():
        profile = VoiceProfile.objects.for_tenant(tenant_id).select_for_update().filter(pk=profile_id).first()
        if profile is None or profile.status != VoiceProfile.Status.ENROLLING:
            return  # Deleted, or re-enrolled by a newer message meanwhile.
        profile.status = status
        profile.error = error
        if path:
            profile.conditioning_path, profile.conditioning_digest = path, digest
            profile.enrollment = findings or {}
        profile.save(update_fields=["status", "error", "conditioning_path", "conditioning_digest", "enrollment", "updated_at"])
