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
from django.utils import timezone
from dramatiq.threading import Interrupt

from synthesis.engines.registry import loaded_engine
from voices.enrollment_jobs import Outcome, enrollment_finish, enrollment_take
from voices.matching import MatchingUnavailable, match_voice
from voices.models import VoiceEnrollment, VoiceProfile, VoiceReference
from voices.services import conditioning_digest

logger = logging.getLogger(__name__)

MATCH_SEED = 0  # Fixed: the same recordings always give the same voice.
PROGRESS_SECONDS = 2.0
SEARCH_SHARE = 0.95  # of the progress bar; the rest is storing the pack


class EnrollmentFailed(Exception):
    """A permanent failure: the profile is marked failed with this message."""


class EnrollmentSuperseded(Exception):
    """A newer enrollment of the voice started (or the voice was deleted): stop working on it."""


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


def _store(enrollment: VoiceEnrollment, name: str, data: bytes) -> tuple[str, str]:
    # One file per run (generation and attempt): a superseded or duplicate run never
    # overwrites the file the voice speaks with; the one that loses deletes its own.
    stem, _, suffix = name.rpartition(".")
    path = (f"tenants/{enrollment.tenant_id}/voices/{enrollment.profile_id}/"
            f"{stem}-g{enrollment.generation}a{enrollment.attempts}.{suffix}")
    if default_storage.exists(path):
        default_storage.delete(path)
    return default_storage.save(path, ContentFile(data)), conditioning_digest(data)


def _enroll_cloned(enrollment: VoiceEnrollment, profile: VoiceProfile, references: list[Path],
                   folder: Path) -> tuple[str, str, dict]:
    engine = loaded_engine(profile.engine)
    local = folder / "conditioning.pth"
    engine.save_conditioning(engine.compute_conditioning(references), local)
    path, digest = _store(enrollment, "conditioning.pth", local.read_bytes())
    return path, digest, {"method": "xtts_latents", "references": len(references)}


class _ProgressReporter:
    """Writes {"stage", "progress"} into the enrolling profile's `enrollment`, at most every
    PROGRESS_SECONDS, so a client polling the voice sees the search move without a write per step."""

    def __init__(self, enrollment: VoiceEnrollment) -> None:
        self.tenant_id, self.profile_id = enrollment.tenant_id, enrollment.profile_id
        self.generation = enrollment.generation
        self.last = float("-inf")

    def __call__(self, stage: str, progress: float, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        # Scoped to the tenant and to this generation of a profile still enrolling: a deleted
        # or re-enrolled voice is left alone, and the search stops early instead of running on
        # for a result nobody will keep.
        reported = VoiceProfile.objects.for_tenant(self.tenant_id).filter(
            pk=self.profile_id, status=VoiceProfile.Status.ENROLLING, enrollment_generation=self.generation
        ).update(enrollment={"stage": stage, "progress": round(progress, 3)}, updated_at=timezone.now())
        if not reported:
            raise EnrollmentSuperseded


def _enroll_matched(enrollment: VoiceEnrollment, profile: VoiceProfile, references: list[Path],
                    folder: Path) -> tuple[str, str, dict]:
    import soundfile as sf

    report = _ProgressReporter(enrollment)
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
    path, digest = _store(enrollment, "pack.npz", result.conditioning())
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


def voice_profile_enroll_execute(*, tenant_id: int, profile_id: int | None, enrollment_id: int | None = None) -> None:
    """Run one enrollment (the actor's body). Idempotent: only a queued enrollment of the
    voice's current generation runs (see voices.enrollment_jobs); a redelivered message, a
    superseded one or one for a deleted voice changes nothing."""
    taken = enrollment_take(tenant_id=tenant_id, profile_id=profile_id, enrollment_id=enrollment_id)
    if taken is None:
        return
    enrollment, profile = taken
    log = {"tenant_id": tenant_id, "profile_id": profile.pk, "enrollment_id": enrollment.pk}
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="parla-enroll-") as tmp:
            folder = Path(tmp)
            references = _local_references(profile, folder)
            enroll = _enroll_cloned if profile.kind == VoiceProfile.Kind.CLONED else _enroll_matched
            path, digest, findings = enroll(enrollment, profile, references, folder)
    except (EnrollmentFailed, EnrollmentSuperseded) as exc:
        # Superseded: enrollment_finish sees the newer generation (or the deleted voice) itself.
        enrollment_finish(enrollment=enrollment, outcome=Outcome.FAILED, error=str(exc),
                          processing_seconds=time.perf_counter() - started)
        return
    except (Exception, Interrupt) as exc:
        # Interrupt: the actor's time limit stopped a hung enrollment. Like any other transient
        # fault it runs again while attempts are left; the last one fails the voice.
        status = enrollment_finish(enrollment=enrollment, outcome=Outcome.RETRY,
                                   error="The enrollment failed; add or replace a recording to try again.",
                                   processing_seconds=time.perf_counter() - started)
        if status == VoiceEnrollment.Status.QUEUED:
            logger.warning("voice_profile_enroll.retry", extra={**log, "error": repr(exc)})
            raise  # Dramatiq retries with backoff.
        logger.exception("voice_profile_enroll.failed", extra=log)
        return
    status = enrollment_finish(
        enrollment=enrollment, outcome=Outcome.SUCCEEDED, processing_seconds=time.perf_counter() - started,
        result={"conditioning_path": path, "conditioning_digest": digest, "enrollment": findings},
    )
    if status != VoiceEnrollment.Status.SUCCEEDED:
        _delete_file(path)  # Superseded or its voice deleted meanwhile: nobody speaks with it.
        logger.info("voice_profile_enroll.discarded", extra={**log, "status": status})
        return
    logger.info("voice_profile_enroll.ready", extra={**log, **findings})


def _delete_file(path: str) -> None:
    try:
        default_storage.delete(path)
    except OSError:
        logger.warning("voice_profile_enroll.delete_file_failed", extra={"path": path})
