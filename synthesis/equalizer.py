"""Long-term spectrum matching: a fixed equaliser that makes a voice's average spectrum follow a speaker's.

A matched voice (voices.matching) can carry one. It is learnt once, at enrollment: the long-term
average spectrum (LTAS) of the reference recordings over that of the voice's own speech,
smoothed over a third of an octave, bounded to ±`limit` dB, and shifted so the speech band
(100 Hz – 4 kHz) keeps its power. At synthesis it is a linear-phase FIR filter applied to each chunk.

Frequencies the references cannot show (above 90% of their Nyquist frequency, e.g. a 16 kHz
recording) keep the gain found at that edge rather than being cut to the floor.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

_FFT = 1024
_TAPS = 511  # odd: a type I linear-phase filter, about 21 ms at 24 kHz
_SPEECH_FLOOR_DB = 40.0  # frames quieter than the loudest by more than this are pauses
_SMOOTHING_OCTAVES = 1 / 3
_LEVEL_BAND = (100.0, 4000.0)  # Hz: the band whose level the equaliser keeps


@dataclass(frozen=True)
class Equalizer:
    frequencies: np.ndarray  # Hz, ascending, from 0 to the sample rate's Nyquist frequency
    gains_db: np.ndarray
    sample_rate: int

    @property
    def flat(self) -> bool:
        return not np.any(self.gains_db)

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """The filtered samples, aligned with the input (the filter's delay is removed)."""
        samples = np.asarray(samples, dtype=np.float32)
        if self.flat or samples.size == 0:
            return samples
        from scipy.signal import oaconvolve

        return oaconvolve(samples, self._taps, mode="same").astype(np.float32)

    @cached_property  # designed once per equaliser, not once per chunk
    def _taps(self) -> np.ndarray:
        from scipy.signal import firwin2

        nyquist = self.sample_rate / 2
        return firwin2(_TAPS, self.frequencies / nyquist, 10 ** (self.gains_db / 20))

    def as_arrays(self) -> dict[str, np.ndarray]:
        """For np.savez beside a voice pack; from_arrays() reads them back."""
        return {
            "eq_frequencies": self.frequencies.astype(np.float32),
            "eq_gains_db": self.gains_db.astype(np.float32),
            "eq_sample_rate": np.array(self.sample_rate, dtype=np.int32),
        }

    @classmethod
    def from_arrays(cls, arrays) -> "Equalizer | None":
        if "eq_gains_db" not in arrays:
            return None
        return cls(
            frequencies=np.asarray(arrays["eq_frequencies"], dtype=np.float64),
            gains_db=np.asarray(arrays["eq_gains_db"], dtype=np.float64),
            sample_rate=int(arrays["eq_sample_rate"]),
        )


def long_term_spectrum(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, mean power) over the frames that hold speech."""
    from scipy.signal import stft

    frequencies, _, frames = stft(np.asarray(samples, dtype=np.float64), sample_rate, nperseg=_FFT,
                                  noverlap=_FFT * 3 // 4)
    power = np.abs(frames) ** 2
    energy = power.sum(axis=0)
    if not energy.size or energy.max() <= 0:
        return frequencies, np.zeros(len(frequencies))
    speech = energy > energy.max() * 10 ** (-_SPEECH_FLOOR_DB / 10)
    return frequencies, power[:, speech].mean(axis=1)


class SpectrumTarget:
    """The references' long-term spectrum, at one output sample rate; equalizer() fits a voice to it."""

    def __init__(self, clips, sample_rate: int) -> None:
        from scipy.signal import resample_poly

        self.sample_rate = sample_rate
        spectra, lowest_rate = [], sample_rate
        for samples, rate in clips:
            samples = np.asarray(samples, dtype=np.float64)
            if samples.ndim == 2:
                samples = samples.mean(axis=1)
            if rate != sample_rate:
                samples = resample_poly(samples, sample_rate, rate)
            self.frequencies, power = long_term_spectrum(samples, sample_rate)
            spectra.append(power / max(power.sum(), 1e-20))  # each clip weighs the same
            lowest_rate = min(lowest_rate, rate)
        self.power = np.mean(spectra, axis=0)
        self.valid_up_to = 0.45 * lowest_rate  # 90% of the lowest Nyquist frequency

    def equalizer(self, samples: np.ndarray, limit_db: float) -> Equalizer:
        """The equaliser that moves the long-term spectrum of `samples` (this voice) to the target's."""
        frequencies = self.frequencies
        _, power = long_term_spectrum(samples, self.sample_rate)
        ratio = 10 * np.log10(self.power + 1e-20) - 10 * np.log10(power / max(power.sum(), 1e-20) + 1e-20)
        smoothed = np.empty_like(ratio)
        for index, frequency in enumerate(frequencies):
            low = frequency * 2 ** (-_SMOOTHING_OCTAVES / 2)
            high = frequency * 2 ** (_SMOOTHING_OCTAVES / 2)
            window = (frequencies >= low) & (frequencies <= high) if frequency > 0 else frequencies <= frequencies[1]
            smoothed[index] = ratio[window].mean()
        edge = np.searchsorted(frequencies, self.valid_up_to, side="right") - 1
        smoothed[edge + 1:] = smoothed[edge]
        below = frequencies < 60.0  # under the voice: hold the gain at 60 Hz, no rumble boost
        smoothed[below] = smoothed[np.argmax(~below)]
        if limit_db <= 0:
            return Equalizer(frequencies=frequencies.copy(), gains_db=np.zeros_like(smoothed),
                             sample_rate=self.sample_rate)
        band = (frequencies >= _LEVEL_BAND[0]) & (frequencies <= _LEVEL_BAND[1])
        gains = smoothed
        for _ in range(3):  # bound, then restore the speech band's power; twice more to settle
            gains = np.clip(gains, -limit_db, limit_db)
            level = np.sum(power[band] * 10 ** (gains[band] / 10)) / max(np.sum(power[band]), 1e-20)
            gains = gains - 10 * np.log10(max(level, 1e-20))
        gains = np.clip(gains, -limit_db, limit_db)
        return Equalizer(frequencies=frequencies.copy(), gains_db=gains, sample_rate=self.sample_rate)
