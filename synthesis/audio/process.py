"""Turn engine output into what the caller asked for: trimmed, paced, pitched, levelled, resampled.

Every signal-processing step is a library call: Rubber Band (through pedalboard) for tempo
and pitch, pyloudnorm for BS.1770 loudness, pedalboard's BrickwallLimiter for the
true-peak ceiling and soxr for resampling. What is left here is gain arithmetic and
choosing where to cut silence.

Order of the whole-file pipeline (`process`), and why:
1. trim leading/trailing silence, so stretching and loudness do not work on dead air;
2. tempo and pitch in one Rubber Band pass (one pass colours the voice less than two);
3. resample to the output rate, so the loudness and true-peak checks see the final samples;
4. loudness normalisation, then `volume_db` on top (so volume still means something when a
   loudness target is set), then the true-peak ceiling last, because every gain before it
   can push peaks up;
5. duplicate to stereo when asked.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pedalboard
import pyloudnorm
import soxr

from synthesis.audio.options import AudioOptions

logger = logging.getLogger(__name__)

# Samples quieter than this, relative to the loudest sample, count as silence when trimming.
# -45 dB keeps soft onsets such as /f/ and /s/, which sit 25-35 dB under the vowels.
SILENCE_THRESHOLD_DB = -45.0
# Below this absolute level the whole signal counts as silence and is left untouched (a
# request that is only an SSML <break> should still give its pause).
SILENCE_FLOOR_DBFS = -80.0
TRIM_MARGIN_SECONDS = 0.05
# BS.1770 gates blocks of 400 ms; shorter audio is measured with one block of its length.
LOUDNESS_BLOCK_SECONDS = 0.4
# BrickwallLimiter's 4x-oversampled detector can let about 0.05 dB through; aim a little
# lower so the measured true peak really stays under the ceiling.
TRUE_PEAK_MARGIN_DB = 0.2
TRUE_PEAK_OVERSAMPLING = 4
# A fixed streaming gain estimated from one sentence is clamped to a sane range: a whisper
# or a breath as the first chunk must not turn into +40 dB for the rest of the stream.
STREAM_LOUDNESS_GAIN_LIMIT_DB = 24.0


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def gain_to_db(gain: float) -> float:
    return 20.0 * math.log10(gain) if gain > 0 else -math.inf


def as_mono(samples: np.ndarray) -> np.ndarray:
    """Contiguous float32 mono. Accepts (n,), (n, 1) and averages (n, 2) down."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, 0] if array.shape[1] == 1 else array.mean(axis=1, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected mono samples shaped (n,) or (n, channels), got {array.shape}")
    return np.ascontiguousarray(array)


def to_channels(mono: np.ndarray, channels: int) -> np.ndarray:
    """(n,) for mono; (n, 2) with the same signal on both sides for stereo."""
    if channels == 1:
        return mono
    return np.ascontiguousarray(np.repeat(mono[:, np.newaxis], channels, axis=1))


def silence(ms: float, sample_rate: int) -> np.ndarray:
    """`ms` milliseconds of digital silence (for SSML <break> and paragraph pauses)."""
    return np.zeros(max(0, round(ms * sample_rate / 1000.0)), dtype=np.float32)


def loud_bounds(
    samples: np.ndarray, *, threshold_db: float = SILENCE_THRESHOLD_DB
) -> tuple[int, int] | None:
    """Index of the first and last sample above the silence threshold; None if all silent."""
    if samples.size == 0:
        return None
    magnitude = np.abs(samples)
    peak = float(magnitude.max())
    if peak < db_to_gain(SILENCE_FLOOR_DBFS):
        return None
    loud = np.flatnonzero(magnitude >= peak * db_to_gain(threshold_db))
    return int(loud[0]), int(loud[-1])


def trim_silence(
    samples: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float = SILENCE_THRESHOLD_DB,
    margin_seconds: float = TRIM_MARGIN_SECONDS,
) -> np.ndarray:
    """Cut leading and trailing silence, keeping `margin_seconds` around the sound.

    A signal that is silent throughout is returned unchanged.
    """
    bounds = loud_bounds(samples, threshold_db=threshold_db)
    if bounds is None:
        return samples
    margin = round(margin_seconds * sample_rate)
    first, last = bounds
    return samples[max(0, first - margin) : last + 1 + margin]


def change_tempo_and_pitch(
    samples: np.ndarray, sample_rate: int, *, speed: float = 1.0, pitch_semitones: float = 0.0
) -> np.ndarray:
    """Speed up/slow down without changing pitch and shift pitch without changing duration.

    One Rubber Band pass (pedalboard.time_stretch) does both. The result always has
    round(len / speed) samples: Rubber Band returns nothing for inputs shorter than its
    window, and such a sliver is padded with silence rather than dropped.
    """
    if (speed == 1.0 and pitch_semitones == 0.0) or samples.size == 0:
        return samples
    stretched = pedalboard.time_stretch(
        np.ascontiguousarray(samples, dtype=np.float32),
        float(sample_rate),
        stretch_factor=float(speed),
        pitch_shift_in_semitones=float(pitch_semitones),
    )
    out = np.asarray(stretched, dtype=np.float32).reshape(-1)
    expected = max(1, round(samples.size / speed))
    if out.size >= expected:
        return np.ascontiguousarray(out[:expected])
    return np.concatenate([out, np.zeros(expected - out.size, dtype=np.float32)])


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate or samples.size == 0:
        return samples
    return np.asarray(soxr.resample(samples, from_rate, to_rate, quality="HQ"), dtype=np.float32)


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """BS.1770 integrated loudness in LUFS; -inf for silence or empty input."""
    if samples.size == 0:
        return -math.inf
    duration = samples.size / sample_rate
    meter = pyloudnorm.Meter(sample_rate, block_size=min(LOUDNESS_BLOCK_SECONDS, duration))
    with warnings.catch_warnings():
        # pyloudnorm warns on silent blocks (log of zero); silence is an expected input.
        warnings.simplefilter("ignore", RuntimeWarning)
        loudness = float(meter.integrated_loudness(samples.astype(np.float64)))
    return loudness if math.isfinite(loudness) else -math.inf


def true_peak_dbtp(samples: np.ndarray, sample_rate: int) -> float:
    """True peak (dBTP) estimated by 4x oversampling with soxr, as BS.1770 Annex 2 does."""
    if samples.size == 0:
        return -math.inf
    oversampled = soxr.resample(
        samples, sample_rate, sample_rate * TRUE_PEAK_OVERSAMPLING, quality="HQ"
    )
    return gain_to_db(float(np.abs(oversampled).max()))


def limit_true_peak(samples: np.ndarray, sample_rate: int, ceiling_dbtp: float) -> np.ndarray:
    """Keep the true peak at or below `ceiling_dbtp`; audio already under it is untouched.

    BrickwallLimiter (lookahead, 4x-oversampled detector, no makeup gain) does the work; a
    last static trim covers the small overshoot its detector can leave on pathological input.
    pedalboard's `Limiter` is deliberately not used: it is a loudness maximiser with makeup gain.
    """
    if samples.size == 0 or true_peak_dbtp(samples, sample_rate) <= ceiling_dbtp:
        return samples
    limiter = pedalboard.BrickwallLimiter(
        ceiling_db=ceiling_dbtp - TRUE_PEAK_MARGIN_DB, release_ms=100.0, true_peak=True
    )
    limited = np.asarray(
        limiter(np.ascontiguousarray(samples), float(sample_rate)), dtype=np.float32
    )
    limited = limited.reshape(-1)[: samples.size]
    overshoot = true_peak_dbtp(limited, sample_rate) - ceiling_dbtp
    if overshoot > 0:
        limited = limited * np.float32(db_to_gain(-overshoot - 0.01))
    return limited


def loudness_gain_db(samples: np.ndarray, sample_rate: int, target_lufs: float) -> float:
    """Gain that brings `samples` to `target_lufs`; 0 for silence (nothing to measure)."""
    measured = integrated_loudness(samples, sample_rate)
    return 0.0 if measured == -math.inf else target_lufs - measured


def apply_gain_db(samples: np.ndarray, gain_db: float) -> np.ndarray:
    if gain_db == 0.0:
        return samples
    return (samples * np.float32(db_to_gain(gain_db))).astype(np.float32, copy=False)


def apply_segment_prosody(
    samples: np.ndarray,
    sample_rate: int,
    rate: float = 1.0,
    pitch_semitones: float = 0.0,
    volume_db: float = 0.0,
) -> np.ndarray:
    """Per-segment SSML <prosody>: tempo `rate`, pitch shift and gain, same length rules as above.

    No limiter here: the whole-file (or per-chunk) step after it enforces the peak ceiling.
    """
    mono = as_mono(samples)
    mono = change_tempo_and_pitch(mono, sample_rate, speed=rate, pitch_semitones=pitch_semitones)
    return apply_gain_db(mono, volume_db)


def process(
    samples: np.ndarray, sample_rate: int, options: AudioOptions, *, apply_speed: bool = True
) -> tuple[np.ndarray, int]:
    """Apply `options` to a whole mono signal; return float32 (n,) or (n, 2) and its rate.

    `apply_speed=False` is for engines that already synthesised at the requested speed
    (Piper's length_scale, for one), which sounds better than stretching afterwards.
    """
    mono = as_mono(samples)
    if options.trim_silence:
        mono = trim_silence(mono, sample_rate)
    mono = change_tempo_and_pitch(
        mono,
        sample_rate,
        speed=options.speed if apply_speed else 1.0,
        pitch_semitones=options.pitch_semitones,
    )
    output_rate = options.output_sample_rate(sample_rate)
    mono = resample(mono, sample_rate, output_rate)
    gain_db = options.volume_db
    if options.loudness_lufs is not None:
        gain_db += loudness_gain_db(mono, output_rate, options.loudness_lufs)
    mono = apply_gain_db(mono, gain_db)
    mono = limit_true_peak(mono, output_rate, options.true_peak_dbtp)
    return to_channels(mono, options.channels), output_rate


class ChunkProcessor:
    """`process()` for streaming: mono chunks in, mono chunks out, at the input rate.

    Resampling and stereo are left to StreamEncoder, whose stateful resampler keeps chunk
    seams continuous. What differs from the whole-file pipeline, and why:

    - Trimming is exact: leading silence is dropped until the first sound, and the silent
      tail of every chunk is held back until either more sound arrives (then it is an
      inner pause and goes out whole) or `finish()` (then only the margin goes out).
    - Tempo/pitch run per emitted piece. Engines hand over one sentence per chunk, so the
      piece edges sit in pauses where Rubber Band's edge effects are inaudible.
    - Loudness cannot be measured on a file that does not exist yet. The gain is estimated
      once, from the first chunk that has sound in it (speech loudness is steady from one
      sentence to the next), clamped to ±24 dB, and then kept fixed so the level never
      pumps; the true-peak limiter catches whatever a louder later sentence overshoots.
    - The limiter runs per piece (a fresh lookahead each time), only on pieces over the ceiling.
    """

    def __init__(
        self, options: AudioOptions, sample_rate: int, *, apply_speed: bool = True
    ) -> None:
        self.options = options
        self.sample_rate = sample_rate
        self._speed = options.speed if apply_speed else 1.0
        self._margin = round(TRIM_MARGIN_SECONDS * sample_rate)
        self._started = not options.trim_silence
        # Silence seen before any sound (only emitted if no sound ever comes) and the
        # silent tail of the latest chunk (emitted once we know what follows it).
        self._leading: list[np.ndarray] = []
        self._held = np.zeros(0, dtype=np.float32)
        self._gain_db: float | None = (
            None if options.loudness_lufs is not None else options.volume_db
        )
        self._finished = False

    def process(self, samples: np.ndarray) -> np.ndarray:
        if self._finished:
            raise RuntimeError("ChunkProcessor.process() called after finish()")
        mono = as_mono(samples)
        if not self.options.trim_silence:
            return self._shape(mono)
        if not self._started:
            bounds = loud_bounds(mono)
            if bounds is None:
                self._leading.append(mono)
                return np.zeros(0, dtype=np.float32)
            leading = np.concatenate([*self._leading, mono[: bounds[0]]])
            self._leading.clear()
            self._started = True
            mono = np.concatenate(
                [leading[max(0, leading.size - self._margin) :], mono[bounds[0] :]]
            )
        data = np.concatenate([self._held, mono]) if self._held.size else mono
        bounds = loud_bounds(data)
        if bounds is None:
            # Still inside a pause: keep holding; it is emitted whole once speech resumes.
            self._held = data
            return np.zeros(0, dtype=np.float32)
        cut = bounds[1] + 1
        self._held = data[cut:]
        return self._shape(data[:cut])

    def finish(self) -> np.ndarray:
        """The audio still held back: the trailing margin (or an all-silent stream as-is)."""
        if self._finished:
            return np.zeros(0, dtype=np.float32)
        self._finished = True
        if not self._started:
            tail = np.concatenate(self._leading) if self._leading else np.zeros(0, dtype=np.float32)
        else:
            tail = self._held[: self._margin]
        self._leading.clear()
        self._held = np.zeros(0, dtype=np.float32)
        return self._shape(tail)

    def _shape(self, mono: np.ndarray) -> np.ndarray:
        if mono.size == 0:
            return mono
        mono = change_tempo_and_pitch(
            mono, self.sample_rate, speed=self._speed, pitch_semitones=self.options.pitch_semitones
        )
        target = self.options.loudness_lufs
        if self._gain_db is None and target is not None:
            if loud_bounds(mono) is None:
                return mono  # nothing to measure yet; silence needs no gain
            estimate = loudness_gain_db(mono, self.sample_rate, target)
            limit = STREAM_LOUDNESS_GAIN_LIMIT_DB
            self._gain_db = self.options.volume_db + min(limit, max(-limit, estimate))
        mono = apply_gain_db(mono, self._gain_db or 0.0)
        return limit_true_peak(mono, self.sample_rate, self.options.true_peak_dbtp)
