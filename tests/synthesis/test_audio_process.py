import itertools

import numpy as np
import pytest

from synthesis.audio.options import AudioOptions
from synthesis.audio.process import (
    ChunkProcessor,
    apply_segment_prosody,
    change_tempo_and_pitch,
    integrated_loudness,
    limit_true_peak,
    process,
    silence,
    true_peak_dbtp,
)

SR = 24000


def sine(freq: float, seconds: float, amplitude: float = 0.5, sample_rate: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(seconds: float, amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    """A 150 Hz buzz with harmonics under a 4 Hz syllable envelope: loudness behaves like speech."""
    t = np.arange(round(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    voice = sum(np.sin(2 * np.pi * 150 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    signal = voice * envelope
    return (amplitude * signal / np.abs(signal).max()).astype(np.float32)


def dominant_frequency(samples: np.ndarray, sample_rate: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / sample_rate)[np.argmax(spectrum)])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def test_silence_has_the_requested_length():
    pause = silence(250, 22050)

    assert pause.dtype == np.float32
    assert len(pause) == round(0.25 * 22050)
    assert not pause.any()


def test_process_trims_leading_and_trailing_silence_keeping_a_margin():
    tone = sine(440, 1.0)
    samples = np.concatenate([silence(700, SR), tone, silence(1200, SR)])

    out, rate = process(samples, SR, AudioOptions())

    assert rate == SR
    assert len(out) == pytest.approx(len(tone) + 2 * 0.05 * SR, abs=0.002 * SR)


def test_process_keeps_inner_pauses_when_trimming():
    samples = np.concatenate([sine(440, 0.5), silence(800, SR), sine(440, 0.5)])

    out, _ = process(samples, SR, AudioOptions())

    assert len(out) == len(samples)


def test_process_keeps_silence_when_trimming_is_off():
    samples = np.concatenate([silence(500, SR), sine(440, 1.0), silence(500, SR)])

    out, _ = process(samples, SR, AudioOptions(trim_silence=False))

    np.testing.assert_array_equal(out, samples)


def test_process_leaves_an_all_silent_signal_alone():
    out, _ = process(silence(600, SR), SR, AudioOptions())

    assert len(out) == round(0.6 * SR)


@pytest.mark.parametrize("speed", [0.5, 1.5, 2.0])
def test_process_speed_changes_duration_but_not_pitch(speed):
    tone = sine(440, 2.0)

    out, _ = process(tone, SR, AudioOptions(speed=speed, trim_silence=False))

    assert len(out) == round(len(tone) / speed)
    assert dominant_frequency(out) == pytest.approx(440, rel=0.02)


def test_process_skips_speed_when_the_engine_applied_it():
    tone = sine(440, 1.0)

    out, _ = process(tone, SR, AudioOptions(speed=2.0, trim_silence=False), apply_speed=False)

    np.testing.assert_array_equal(out, tone)


@pytest.mark.parametrize("semitones", [12, -12, 7, -3])
def test_process_pitch_shift_changes_pitch_but_not_duration(semitones):
    # A harmonic signal, not a sine: formants are preserved, so a lone partial moved away
    # from its own spectral envelope would come out attenuated.
    voice = speechlike(2.0)

    out, _ = process(voice, SR, AudioOptions(pitch_semitones=semitones, trim_silence=False))

    assert len(out) == len(voice)
    expected = 150 * 2 ** (semitones / 12)
    assert dominant_frequency(out[SR // 4 : -SR // 4]) == pytest.approx(expected, rel=0.02)
    assert rms(out) == pytest.approx(rms(voice), rel=0.25)


def test_process_volume_gain_scales_the_level():
    tone = sine(440, 1.0, amplitude=0.1)

    out, _ = process(tone, SR, AudioOptions(volume_db=6.0, trim_silence=False))

    assert rms(out) / rms(tone) == pytest.approx(10 ** (6 / 20), rel=0.001)


@pytest.mark.parametrize("target", [-30.0, -23.0, -16.0])
def test_process_normalises_loudness_to_the_target(target):
    samples = speechlike(3.0, amplitude=0.05)

    out, rate = process(samples, SR, AudioOptions(loudness_lufs=target, trim_silence=False))

    assert integrated_loudness(out, rate) == pytest.approx(target, abs=0.5)


def test_process_adds_volume_on_top_of_the_loudness_target():
    samples = speechlike(3.0, amplitude=0.05)

    out, rate = process(
        samples, SR, AudioOptions(loudness_lufs=-20, volume_db=-6, trim_silence=False)
    )

    assert integrated_loudness(out, rate) == pytest.approx(-26, abs=0.5)


@pytest.mark.parametrize("ceiling", [-1.0, -3.0])
def test_process_keeps_the_true_peak_under_the_ceiling(ceiling):
    samples = speechlike(2.0, amplitude=0.5)

    out, rate = process(
        samples, SR, AudioOptions(volume_db=12, true_peak_dbtp=ceiling, trim_silence=False)
    )

    assert true_peak_dbtp(out, rate) <= ceiling + 0.05
    # A limiter, not a gain drop: the level still went up by several dB.
    assert rms(out) > 1.4 * rms(samples)


def test_process_favours_the_true_peak_ceiling_over_a_very_loud_target():
    samples = speechlike(3.0, amplitude=0.05)

    out, rate = process(samples, SR, AudioOptions(loudness_lufs=-6, trim_silence=False))

    assert true_peak_dbtp(out, rate) <= -1.0 + 0.05
    # Limiting gets louder than merely scaling the peak down to the ceiling would.
    peak_scaled = samples * 10 ** ((-1.0 - true_peak_dbtp(samples, SR)) / 20)
    assert integrated_loudness(peak_scaled, SR) + 0.5 < integrated_loudness(out, rate) < -6


def test_limit_true_peak_leaves_audio_under_the_ceiling_untouched():
    tone = sine(440, 0.5, amplitude=0.5)

    np.testing.assert_array_equal(limit_true_peak(tone, SR, -1.0), tone)


def test_process_resamples_to_the_requested_rate():
    tone = sine(1000, 1.0)

    out, rate = process(tone, SR, AudioOptions(sample_rate=44100, trim_silence=False))

    assert rate == 44100
    assert len(out) == 44100
    assert dominant_frequency(out, 44100) == pytest.approx(1000, rel=0.005)


def test_process_raises_opus_output_to_an_opus_rate():
    _, rate = process(sine(440, 0.5), 22050, AudioOptions(format="opus"))

    assert rate == 24000


def test_process_duplicates_mono_to_stereo():
    out, _ = process(sine(440, 0.5), SR, AudioOptions(channels=2, trim_silence=False))

    assert out.shape == (SR // 2, 2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], out[:, 1])


def test_process_returns_contiguous_float32_mono():
    out, _ = process(sine(440, 0.5).astype(np.float64), SR, AudioOptions(volume_db=-3))

    assert out.dtype == np.float32
    assert out.ndim == 1
    assert out.flags.c_contiguous


def test_apply_segment_prosody_applies_rate_pitch_and_volume():
    voice = speechlike(2.0)

    out = apply_segment_prosody(voice, SR, rate=1.25, pitch_semitones=12, volume_db=-6)

    assert len(out) == round(len(voice) / 1.25)
    assert dominant_frequency(out[SR // 4 : -SR // 4]) == pytest.approx(300, rel=0.02)
    assert rms(out) == pytest.approx(rms(voice) / 2, rel=0.25)


def test_apply_segment_prosody_is_a_no_op_at_neutral_values():
    tone = sine(440, 0.3)

    np.testing.assert_array_equal(apply_segment_prosody(tone, SR), tone)


def test_change_tempo_and_pitch_pads_a_sliver_shorter_than_the_stretch_window():
    sliver = sine(440, 0.004)

    out = change_tempo_and_pitch(sliver, SR, speed=1.5)

    assert len(out) == round(len(sliver) / 1.5)


def chunked(samples: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    edges = np.cumsum([0, *sizes])
    return [samples[a:b] for a, b in itertools.pairwise(edges)] + [samples[edges[-1] :]]


def run_chunks(processor: ChunkProcessor, chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([*(processor.process(chunk) for chunk in chunks), processor.finish()])


def test_chunk_processor_trims_exactly_like_the_whole_file_pipeline():
    samples = np.concatenate(
        [silence(400, SR), sine(440, 0.7), silence(600, SR), sine(330, 0.5), silence(900, SR)]
    )
    chunks = chunked(samples, [3001, 9000, 1, 7777, 12000, 4001])

    streamed = run_chunks(ChunkProcessor(AudioOptions(), SR), chunks)
    whole, _ = process(samples, SR, AudioOptions())

    np.testing.assert_array_equal(streamed, whole)


def test_chunk_processor_passes_audio_through_when_trimming_is_off():
    samples = np.concatenate([silence(300, SR), sine(440, 0.5), silence(300, SR)])

    streamed = run_chunks(
        ChunkProcessor(AudioOptions(trim_silence=False), SR), chunked(samples, [500, 999])
    )

    np.testing.assert_array_equal(streamed, samples)


def test_chunk_processor_emits_an_all_silent_stream_at_finish():
    processor = ChunkProcessor(AudioOptions(), SR)

    first = processor.process(silence(300, SR))
    rest = processor.finish()

    assert len(first) == 0
    assert len(rest) == round(0.3 * SR)


def test_chunk_processor_fixes_the_loudness_gain_from_the_first_sound():
    first, second = speechlike(2.0, amplitude=0.05), speechlike(2.0, amplitude=0.025, seed=1)
    processor = ChunkProcessor(AudioOptions(loudness_lufs=-24, trim_silence=False), SR)

    out_first, out_second = processor.process(first), processor.process(second)

    assert integrated_loudness(out_first, SR) == pytest.approx(-24, abs=0.5)
    # The same gain for the rest of the stream: the quieter sentence stays quieter.
    assert rms(out_second) / rms(second) == pytest.approx(rms(out_first) / rms(first), rel=0.001)


def test_chunk_processor_keeps_every_chunk_under_the_true_peak_ceiling():
    processor = ChunkProcessor(AudioOptions(volume_db=15, trim_silence=False), SR)

    outs = [processor.process(speechlike(1.0, amplitude=0.5, seed=seed)) for seed in range(3)]

    assert max(true_peak_dbtp(out, SR) for out in outs) <= -1.0 + 0.05


def test_chunk_processor_applies_speed_per_chunk():
    processor = ChunkProcessor(AudioOptions(speed=2.0, trim_silence=False), SR)

    out = run_chunks(processor, [sine(440, 1.0), sine(440, 1.0)])

    assert len(out) == SR
