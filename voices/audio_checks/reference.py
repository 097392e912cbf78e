"""Validate an uploaded reference recording and turn it into the canonical 24 kHz mono WAV."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from synthesis.audio.process import TRIM_MARGIN_SECONDS, db_to_gain
from voices.audio_checks import limits
from voices.audio_checks.decode import decode_reference
from voices.audio_checks.sniff import sniff_container
from voices.errors import (
    AudioCorrupt,
    AudioTooLarge,
    AudioTooLong,
    AudioTooShort,
    ReferenceRejected,
)

_DISPLAY_NAME_CHARS = 100
# Trimming works on 20 ms frames against the file's own noise floor (its quietest 10 % of
# frames), not on single samples against the peak as synthesis' trim_silence does: room
# noise at -55 dBFS would pass that test everywhere and count as speech.
_TRIM_FRAME_SECONDS = 0.02
_NOISE_PERCENTILE, _LOUD_PERCENTILE = 10, 95
_SPEECH_ABOVE_NOISE_DB = 10.0  # a frame this far over the noise floor is speech...
_SPEECH_BELOW_LOUD_DB = 40.0  # ...unless it is also this far under the loud frames
_EDGE_ABOVE_NOISE_DB = 3.0  # soft onsets and endings are kept down to this
_EDGE_BELOW_LOUD_DB = 50.0


@dataclass(frozen=True, eq=False)
class ReferenceAudio:
    """A recording that passed validation. It deliberately carries no client filename.

    `eq=False`: comparing numpy arrays field by field is ambiguous; compare `checksum`.
    `samples` is read-only. `source_clipping_ratio` is the share of source samples (all
    channels, before resampling) at or near full scale; None when the object was built
    from somewhere else, and the quality report then measures `samples` instead.
    """

    wav_bytes: bytes
    samples: np.ndarray
    sample_rate: int
    speech_seconds: float
    duration_seconds: float
    source_format: str
    source_sample_rate: int
    source_channels: int
    checksum: str
    source_clipping_ratio: float | None = None


def reference_validate(data: bytes, *, filename: str = "", max_bytes: int) -> ReferenceAudio:
    """Decode `data` and check it is 3-30 s of speech; raise a ReferenceRejected otherwise.

    Everything is decided from the bytes. `filename` only labels the error (`extra`
    ["filename"], reduced to a printable base name); it is never parsed for a type and never
    used in a path.
    """
    try:
        return _validate(data, max_bytes=max_bytes)
    except ReferenceRejected as exc:
        if name := _display_name(filename):
            exc.extra.setdefault("filename", name)
        raise


def _validate(data: bytes, *, max_bytes: int) -> ReferenceAudio:
    size = len(data)
    if size == 0:
        raise AudioCorrupt("The file is empty.", extra={"size": 0})
    if size > max_bytes:
        raise AudioTooLarge(
            f"The file is {_human_size(size)}; the limit is {_human_size(max_bytes)}.",
            extra={"limit": max_bytes, "size": size},
        )
    source_format = sniff_container(data)
    decoded = decode_reference(data, source_format)

    rate = limits.CANONICAL_SAMPLE_RATE
    bounds = _speech_bounds(decoded.mono, rate)
    if bounds is None:
        raise AudioTooShort(
            "No speech found: the recording is silent.",
            extra={"speech_seconds": 0.0, "minimum_seconds": limits.MIN_SPEECH_SECONDS},
        )
    first, end = bounds
    speech_seconds = (end - first) / rate
    if speech_seconds < limits.MIN_SPEECH_SECONDS:
        raise AudioTooShort(
            f"The recording holds {speech_seconds:.1f} s of speech; at least "
            f"{limits.MIN_SPEECH_SECONDS:.0f} s is needed.",
            extra={
                "speech_seconds": round(speech_seconds, 2),
                "minimum_seconds": limits.MIN_SPEECH_SECONDS,
            },
        )
    if speech_seconds > limits.MAX_SPEECH_SECONDS:
        raise AudioTooLong(
            f"The recording holds {speech_seconds:.1f} s of speech; at most "
            f"{limits.MAX_SPEECH_SECONDS:.0f} s is used. Trim it to your best passage.",
            extra={
                "speech_seconds": round(speech_seconds, 2),
                "maximum_seconds": limits.MAX_SPEECH_SECONDS,
            },
        )

    margin = round(TRIM_MARGIN_SECONDS * rate)
    trimmed = decoded.mono[max(0, first - margin) : end + margin]
    pcm = np.clip(np.round(trimmed.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, rate, format="WAV", subtype="PCM_16")
    # Exactly what reading wav_bytes back as float gives, so both views agree to the bit.
    samples = pcm.astype(np.float32) / np.float32(32768.0)
    samples.flags.writeable = False
    return ReferenceAudio(
        wav_bytes=buffer.getvalue(),
        samples=samples,
        sample_rate=rate,
        speech_seconds=speech_seconds,
        duration_seconds=pcm.size / rate,
        source_format=source_format,
        source_sample_rate=decoded.source_sample_rate,
        source_channels=decoded.source_channels,
        checksum=hashlib.sha256(data).hexdigest(),
        source_clipping_ratio=decoded.clipping_ratio,
    )


def _speech_bounds(mono: np.ndarray, rate: int) -> tuple[int, int] | None:
    """[first, end) sample range from the first to the last speech frame; None if silent.

    Frames well over the noise floor mark speech; the range then grows outwards over frames
    still a little over the floor, so soft onsets and trailing consonants are kept.
    """
    if mono.size == 0 or float(np.abs(mono).max()) < db_to_gain(limits.NO_SPEECH_PEAK_DBFS):
        return None
    frame = round(_TRIM_FRAME_SECONDS * rate)
    count = -(-mono.size // frame)
    padded = np.zeros(count * frame, dtype=np.float64)
    padded[: mono.size] = mono
    level = 10.0 * np.log10(np.mean(padded.reshape(count, frame) ** 2, axis=1) + 1e-12)
    noise, loud = np.percentile(level, [_NOISE_PERCENTILE, _LOUD_PERCENTILE])
    above_noise = min(_SPEECH_ABOVE_NOISE_DB, (loud - noise) / 2)
    speech = np.flatnonzero(level >= max(noise + above_noise, loud - _SPEECH_BELOW_LOUD_DB))
    if speech.size == 0:
        return None
    edge = level >= max(noise + _EDGE_ABOVE_NOISE_DB, loud - _EDGE_BELOW_LOUD_DB)
    first, last = int(speech[0]), int(speech[-1])
    while first > 0 and edge[first - 1]:
        first -= 1
    while last < count - 1 and edge[last + 1]:
        last += 1
    return first * frame, min(mono.size, (last + 1) * frame)


def _display_name(filename: str) -> str:
    """The client's name reduced to something safe to show: last component, printable, short."""
    # SECURITY: "../../etc/passwd.wav" becomes "passwd.wav"; it is shown, never opened.
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:_DISPLAY_NAME_CHARS]


def _human_size(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    return f"{size / 1000:.0f} KB" if size >= 1000 else f"{size} bytes"
