"""Enrollment: turn a profile's recordings into something an engine can speak with, once.

- Cloned (XTTS): speaker latents computed from all recordings and stored beside the profile.
- Matched (Kokoro, where no cloning engine runs): each bundled style pack reads a test
  sentence; the pack whose voice is closest to the recordings by speaker-embedding
  similarity (Resemblyzer, cosine) is stored as the profile's pack. The similarity is
  measured and kept with the profile: a matched voice is an approximation and says so.
"""

import io
import logging
import tempfile
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from synthesis.engines.base import SynthesisRequest
from synthesis.engines.registry import loaded_engine
from synthesis.types import Segment
from voices.models import VoiceProfile, VoiceReference
from voices.services import conditioning_digest

logger = logging.getLogger(__name__)

MATCH_SENTENCE = "The quick brown fox jumps over the lazy dog, and then it rests in the shade."


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


def speaker_similarity_model():
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise EnrollmentFailed(
            "Matching a voice needs speaker embeddings (the resemblyzer package of the engines extra)."
        ) from exc
    return VoiceEncoder(device="cpu", verbose=False)


def _embedding(encoder, samples: np.ndarray, sample_rate: int) -> np.ndarray:
    from resemblyzer import preprocess_wav

    return encoder.embed_utterance(preprocess_wav(samples, source_sr=sample_rate))


def _enroll_matched(profile: VoiceProfile, references: list[Path], folder: Path) -> tuple[str, str, dict]:
    import soundfile as sf

    engine = loaded_engine(profile.engine)
    encoder = speaker_similarity_model()
    target = np.mean([_embedding(encoder, *sf.read(path, dtype="float32")) for path in references], axis=0)
    target /= np.linalg.norm(target)
    scores = {}
    for voice in engine.voices():
        chunks = list(engine.synthesize([Segment(MATCH_SENTENCE)], SynthesisRequest(voice=voice.name)))
        embedding = _embedding(encoder, np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate)
        scores[voice.name] = float(np.dot(target, embedding / np.linalg.norm(embedding)))
    best = max(scores, key=scores.get)
    buffer = io.BytesIO()
    np.save(buffer, engine.pack(best))
    path, digest = _store(profile, "pack.npy", buffer.getvalue())
    return path, digest, {
        "method": "closest_style_pack",
        "approximation": True,
        "base_pack": best,
        "similarity": round(scores[best], 4),
        "candidates": {name: round(score, 4) for name, score in scores.items()},
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
