"""The long-term spectrum equaliser that matched voices carry (synthesis.equalizer)."""

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from synthesis.equalizer import Equalizer, SpectrumTarget, long_term_spectrum

RATE = 24_000


def _noise(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)


def _dark(samples: np.ndarray, rate: int = RATE) -> np.ndarray:
    """A speaker (or microphone) with little treble: a 1 kHz low-pass."""
    return sosfilt(butter(2, 1000, fs=rate, output="sos"), samples).astype(np.float32)


def _band_db(samples: np.ndarray, low: float, high: float) -> float:
    frequencies, power = long_term_spectrum(samples, RATE)
    band = (frequencies >= low) & (frequencies < high)
    return float(10 * np.log10(power[band].mean()))


def test_the_equaliser_moves_a_voice_toward_the_references_tilt_within_its_bound():
    reference = _dark(_noise(4, seed=1))
    voice = _noise(3, seed=2)
    target = SpectrumTarget([(reference, RATE)], RATE)

    equalizer = target.equalizer(voice, limit_db=12)
    heard = equalizer.apply(voice)

    assert np.abs(equalizer.gains_db).max() <= 12 + 1e-9
    assert equalizer.gains_db[np.searchsorted(equalizer.frequencies, 6000)] < -10  # treble cut
    tilt = lambda x: _band_db(x, 200, 800) - _band_db(x, 4000, 8000)  # noqa: E731
    assert tilt(voice) == pytest.approx(0, abs=1.5)
    assert tilt(heard) > 15  # the reference's is about 40 dB; the ±12 dB bound stops it short
    # The speech band keeps its level: 100 Hz – 4 kHz is centred on 0 dB.
    assert _band_db(heard, 100, 4000) == pytest.approx(_band_db(voice, 100, 4000), abs=3)


def test_a_zero_bound_is_no_equaliser_and_leaves_the_samples_untouched():
    reference, voice = _dark(_noise(2, seed=3)), _noise(2, seed=4)

    equalizer = SpectrumTarget([(reference, RATE)], RATE).equalizer(voice, limit_db=0)

    assert equalizer.flat
    assert equalizer.apply(voice) is not None and np.array_equal(equalizer.apply(voice), voice)


def test_frequencies_a_narrow_band_reference_cannot_show_keep_the_gain_at_its_edge():
    # A 16 kHz recording holds nothing above 8 kHz: that is the recording, not the speaker.
    reference = _noise(4, seed=5)[: 4 * 16_000]
    target = SpectrumTarget([(reference, 16_000)], RATE)

    equalizer = target.equalizer(_noise(3, seed=6), limit_db=12)

    above = equalizer.frequencies > 0.45 * 16_000
    edge = equalizer.gains_db[np.argmax(above) - 1]
    assert np.allclose(equalizer.gains_db[above], edge)
    assert edge > -6  # not cut to the floor


def test_the_filter_is_aligned_and_keeps_the_length():
    impulse = np.zeros(4000, dtype=np.float32)
    impulse[2000] = 1.0
    frequencies = np.linspace(0, RATE / 2, 513)
    equalizer = Equalizer(frequencies=frequencies, gains_db=np.where(frequencies > 3000, -6.0, 0.0), sample_rate=RATE)

    out = equalizer.apply(impulse)

    assert out.shape == impulse.shape and out.dtype == np.float32
    assert int(np.argmax(np.abs(out))) == 2000


def test_arrays_round_trip_for_storage_beside_a_pack():
    frequencies = np.linspace(0, RATE / 2, 513)
    equalizer = Equalizer(frequencies=frequencies, gains_db=np.sin(frequencies / 1000) * 5, sample_rate=RATE)

    again = Equalizer.from_arrays(equalizer.as_arrays())

    assert again.sample_rate == RATE
    assert np.allclose(again.frequencies, frequencies) and np.allclose(again.gains_db, equalizer.gains_db, atol=1e-5)
    assert Equalizer.from_arrays({"pack": np.zeros(3)}) is None
