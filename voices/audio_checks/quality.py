"""A cheap quality report on a validated reference: numbers plus plain-language advice.

Signal processing only (numpy, soxr, pyloudnorm), no models; about 50 ms for 30 s of audio
on one busy core. Methods:

- SNR: power of 20 ms frames. The noise estimate is the mean power of the quietest 10 % of
  frames (the pauses between words and syllables); the speech estimate is the mean power of
  the loudest half of the frames, less that noise. A recording with no pauses at all reads
  a little low, because its quietest frames are soft consonants rather than room noise.
- Clipping: share of source samples at or above 0.99 of full scale (ReferenceAudio carries it).
- Loudness: BS.1770 integrated loudness (pyloudnorm, through synthesis.audio.process).
- Several speakers: a pitch track (normalised autocorrelation of 40 ms frames at 8 kHz,
  voiced frames only), summarised as the median pitch of each 1 s window. The window
  medians are split in two by Otsu's method; the flag is raised only when both groups are
  big, at least 7 semitones apart (about the gap between a typical male and female voice)
  and 3 pooled standard deviations apart, and each group holds a turn of about 2 s.
  Medians absorb intonation and octave errors, which touch a minority of frames in a
  window; a single real voice (Piper's "joe") gives groups 3-4 semitones apart. Two
  speakers of similar pitch are missed: false negatives are the accepted trade-off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import soxr
from numpy.lib.stride_tricks import sliding_window_view

from synthesis.audio.process import gain_to_db, integrated_loudness
from voices.audio_checks import limits
from voices.audio_checks.reference import ReferenceAudio

NOISY_SNR_DB = 15.0
CLIPPING_HINT_RATIO = 0.001
QUIET_LUFS = -35.0

_SNR_FRAME_SECONDS = 0.02
_NOISE_QUANTILE, _SPEECH_QUANTILE = 0.10, 0.50
# Quantisation noise of 16-bit PCM: the floor of any noise estimate on the canonical file.
_NOISE_FLOOR_POWER = (1.0 / 32768.0) ** 2 / 12.0

_PITCH_RATE = 8_000
_PITCH_FRAME, _PITCH_HOP = 320, 160  # 40 ms windows every 20 ms at 8 kHz
_PITCH_FFT = 512  # >= frame + longest lag, so the circular autocorrelation does not wrap
_MIN_F0, _MAX_F0 = 60.0, 400.0
_VOICING_NCCF = 0.6
_OCTAVE_PICK = 0.9  # take the shortest lag whose peak is this close to the best one
_VOICED_LEVEL_DB = -30.0  # voiced frames are within this of the loud frames' power

# Pitch is summarised per window, so intonation and octave errors (a minority of frames
# in any one window) average out, while a change of speaker moves whole windows.
_WINDOW_SECONDS, _WINDOW_HOP_SECONDS = 1.0, 0.5
_MIN_VOICED_PER_WINDOW = 15  # 0.3 s of voicing
_MIN_WINDOWS = 6
_MIN_GROUP_SHARE = 0.2
_MIN_GROUP_DISTANCE_SEMITONES = 7.0
_MIN_GROUP_SEPARATION = 3.0
_SEMITONE_SPREAD_FLOOR = 0.5
_MIN_TURN_WINDOWS = 3  # a turn of about two seconds


@dataclass(frozen=True)
class QualityReport:
    speech_seconds: float
    snr_db: float
    clipping_ratio: float
    loudness_lufs: float
    peak_dbfs: float
    multiple_speakers_suspected: bool
    hints: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready: rounded numbers, and None where a level is minus infinity."""
        return {
            "speech_seconds": round(self.speech_seconds, 2),
            "snr_db": _rounded(self.snr_db, 1),
            "clipping_ratio": round(self.clipping_ratio, 4),
            "loudness_lufs": _rounded(self.loudness_lufs, 1),
            "peak_dbfs": _rounded(self.peak_dbfs, 1),
            "multiple_speakers_suspected": self.multiple_speakers_suspected,
            "hints": list(self.hints),
        }


def reference_quality_report(reference: ReferenceAudio) -> QualityReport:
    samples = np.asarray(reference.samples, dtype=np.float32)
    rate = reference.sample_rate
    snr_db = _snr_db(samples, rate)
    clipping = reference.source_clipping_ratio
    if clipping is None:
        clipped = np.count_nonzero(np.abs(samples) >= limits.CLIP_LEVEL)
        clipping = float(clipped / max(1, samples.size))
    loudness = integrated_loudness(samples, rate)
    peak_dbfs = gain_to_db(float(np.abs(samples).max())) if samples.size else -math.inf
    several = _multiple_speakers_suspected(samples, rate)

    hints = []
    if snr_db < NOISY_SNR_DB:
        hints.append(f"Too much background noise (SNR {snr_db:.0f} dB); record in a quieter room.")
    if clipping >= CLIPPING_HINT_RATIO:
        hints.append(f"Clipped peaks ({clipping:.1%} of samples); lower the input gain.")
    if loudness < QUIET_LUFS:
        hints.append(
            f"Very quiet recording ({loudness:.0f} LUFS); move closer to the microphone "
            "or raise the input gain."
        )
    if several:
        hints.append(
            "More than one speaker may be present; upload a recording of the narrator alone."
        )
    return QualityReport(
        speech_seconds=reference.speech_seconds,
        snr_db=snr_db,
        clipping_ratio=clipping,
        loudness_lufs=loudness,
        peak_dbfs=peak_dbfs,
        multiple_speakers_suspected=several,
        hints=hints,
    )


def _snr_db(samples: np.ndarray, rate: int) -> float:
    frame = max(1, round(_SNR_FRAME_SECONDS * rate))
    count = samples.size // frame
    if count < 2:
        return 0.0
    framed = samples[: count * frame].reshape(count, frame)
    powers = np.sort(np.mean(np.square(framed, dtype=np.float64), axis=1))
    noise = max(float(powers[: max(1, int(count * _NOISE_QUANTILE))].mean()), _NOISE_FLOOR_POWER)
    speech = float(powers[int(count * _SPEECH_QUANTILE) :].mean()) - noise
    return 10.0 * math.log10(max(speech, _NOISE_FLOOR_POWER) / noise)


def _pitch_track(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame times in seconds, F0 in Hz) of the voiced frames only."""
    x = np.asarray(soxr.resample(samples, rate, _PITCH_RATE, quality="MQ"), dtype=np.float32)
    if x.size < _PITCH_FRAME:
        return np.zeros(0), np.zeros(0)
    frames = sliding_window_view(x, _PITCH_FRAME)[::_PITCH_HOP].astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(frames, _PITCH_FFT)
    min_lag = int(_PITCH_RATE / _MAX_F0)
    max_lag = int(math.ceil(_PITCH_RATE / _MIN_F0))
    autocorrelation = np.fft.irfft(spectrum * np.conj(spectrum), _PITCH_FFT)[:, : max_lag + 2]
    # Normalise by the energy of the two overlapping parts (a normalised cross-correlation),
    # so long lags are not penalised for overlapping less.
    energy = np.cumsum(frames**2, axis=1)
    lags = np.arange(min_lag - 1, max_lag + 2)
    head = energy[:, _PITCH_FRAME - 1 - lags]
    tail = energy[:, -1:] - energy[:, lags - 1]
    nccf = autocorrelation[:, lags] / np.sqrt(head * tail + 1e-12)

    inner = nccf[:, 1:-1]
    is_peak = (inner >= nccf[:, :-2]) & (inner > nccf[:, 2:])
    best = np.where(is_peak, inner, -1.0).max(axis=1)
    candidates = is_peak & (inner >= _OCTAVE_PICK * best[:, None])
    pick = candidates.argmax(axis=1)
    power = energy[:, -1] / _PITCH_FRAME
    loud = np.quantile(power, 0.9)
    voiced = (best >= _VOICING_NCCF) & (power >= loud * 10 ** (_VOICED_LEVEL_DB / 10))

    # Parabolic interpolation around the chosen peak for a fractional lag.
    rows = np.arange(len(pick))
    left, centre, right = nccf[rows, pick], nccf[rows, pick + 1], nccf[rows, pick + 2]
    curvature = left - 2 * centre + right
    offset = 0.5 * (left - right) / np.where(np.abs(curvature) > 1e-9, curvature, np.inf)
    lag = lags[pick + 1] + np.clip(offset, -0.5, 0.5)
    times = (np.arange(len(pick)) * _PITCH_HOP + _PITCH_FRAME / 2) / _PITCH_RATE
    return times[voiced], _PITCH_RATE / lag[voiced]


def _multiple_speakers_suspected(samples: np.ndarray, rate: int) -> bool:
    times, f0 = _pitch_track(samples, rate)
    medians = _window_medians(times, 12.0 * np.log2(f0 / 55.0))
    if medians.size < _MIN_WINDOWS:
        return False
    ordered = np.sort(medians)
    threshold = _otsu_threshold(ordered)
    low, high = ordered[ordered <= threshold], ordered[ordered > threshold]
    if min(low.size, high.size) < max(_MIN_TURN_WINDOWS, _MIN_GROUP_SHARE * ordered.size):
        return False
    distance = float(high.mean() - low.mean())
    floor = _SEMITONE_SPREAD_FLOOR
    spread = math.sqrt((max(float(low.std()), floor) ** 2 + max(float(high.std()), floor) ** 2) / 2)
    if distance < _MIN_GROUP_DISTANCE_SEMITONES or distance / spread < _MIN_GROUP_SEPARATION:
        return False
    labels = medians > threshold
    return all(_longest_run(labels == group) >= _MIN_TURN_WINDOWS for group in (False, True))


def _window_medians(times: np.ndarray, semitones: np.ndarray) -> np.ndarray:
    """Median pitch of each 1 s window (hop 0.5 s) that has enough voiced frames."""
    if times.size == 0:
        return np.zeros(0)
    starts = np.arange(0.0, float(times[-1]), _WINDOW_HOP_SECONDS)
    first = np.searchsorted(times, starts)
    last = np.searchsorted(times, starts + _WINDOW_SECONDS)
    medians = [
        np.median(semitones[a:b])
        for a, b in zip(first, last, strict=True)
        if b - a >= _MIN_VOICED_PER_WINDOW
    ]
    return np.array(medians)


def _otsu_threshold(ordered: np.ndarray) -> float:
    """The split of sorted values that maximises the between-group variance."""
    n = ordered.size
    counts = np.arange(1, n)
    sums = np.cumsum(ordered)[:-1]
    mean_low = sums / counts
    mean_high = (ordered.sum() - sums) / (n - counts)
    between = counts * (n - counts) * (mean_low - mean_high) ** 2
    split = int(np.argmax(between))
    return float((ordered[split] + ordered[split + 1]) / 2)


def _longest_run(member: np.ndarray) -> int:
    longest = current = 0
    for inside in member:
        current = current + 1 if inside else 0
        longest = max(longest, current)
    return longest


def _rounded(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None
