"""Validation and quality report of uploaded reference recordings (voice cloning).

    reference = reference_validate(data, filename=upload.name, max_bytes=settings.X)
    report = reference_quality_report(reference)

Modules: sniff (container from magic bytes), decode (header claims, bounded decoding),
reference (trimming, length rules, canonical WAV), quality (SNR, clipping, loudness,
several-speaker heuristic), limits (every threshold).
"""

from voices.audio_checks.limits import CANONICAL_SAMPLE_RATE, MAX_SPEECH_SECONDS, MIN_SPEECH_SECONDS
from voices.audio_checks.quality import QualityReport, reference_quality_report
from voices.audio_checks.reference import ReferenceAudio, reference_validate

__all__ = [
    "CANONICAL_SAMPLE_RATE",
    "MAX_SPEECH_SECONDS",
    "MIN_SPEECH_SECONDS",
    "QualityReport",
    "ReferenceAudio",
    "reference_quality_report",
    "reference_validate",
]
