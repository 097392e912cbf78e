import io

import numpy as np
import pytest
import soundfile as sf

from synthesis.audio import ffmpeg as ffmpeg_module
from synthesis.audio.encode import codec_bitrate_kbps, encode, vorbis_quality
from synthesis.audio.ffmpeg import FfmpegError, ffmpeg_decode, ffmpeg_executable, run_ffmpeg
from synthesis.audio.options import FORMATS, AudioOptions


def sine(freq: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, sample_rate: int, amplitude: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(7)
    return (amplitude * rng.uniform(-1, 1, round(seconds * sample_rate))).astype(np.float32)


def decode(data: bytes, options: AudioOptions, sample_rate: int) -> tuple[np.ndarray, int]:
    """Decode with libsndfile where it can, ffmpeg for M4A, numpy for headerless PCM."""
    if options.format == "pcm":
        ints = np.frombuffer(data, dtype="<i2").reshape(-1, options.channels)
        return ints.astype(np.float32) / 32768, sample_rate
    if options.format == "m4a":
        return ffmpeg_decode(data)
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples, rate


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("format", FORMATS)
def test_encode_round_trips_duration_rate_and_channels(format, channels):
    samples = sine(440, 1.5, 22050)
    if channels == 2:
        samples = np.column_stack([samples, samples])
    options = AudioOptions(format=format, channels=channels)

    decoded, rate = decode(encode(samples, 22050, options), options, 22050)

    assert rate == options.output_sample_rate(22050)
    assert decoded.shape[1] == channels
    assert len(decoded) / rate == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 24000, 44100, 48000])
@pytest.mark.parametrize("format", ["mp3", "opus", "ogg", "m4a"])
def test_encode_lossy_formats_work_at_every_output_rate(format, sample_rate):
    options = AudioOptions(format=format, sample_rate=sample_rate, bitrate_kbps=320)

    decoded, rate = decode(encode(sine(440, 0.5, 24000), 24000, options), options, sample_rate)

    assert rate == options.output_sample_rate(24000)
    assert len(decoded) / rate == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize(
    ("subtype", "expected"), [("pcm_16", "PCM_16"), ("pcm_24", "PCM_24"), ("float", "FLOAT")]
)
def test_encode_wav_uses_the_requested_subtype(subtype, expected):
    samples = noise(0.2, 24000)

    data = encode(samples, 24000, AudioOptions(wav_subtype=subtype))

    assert sf.info(io.BytesIO(data)).subtype == expected
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32")
    tolerance = {"pcm_16": 1 / 32767, "pcm_24": 1 / 2**23, "float": 0}[subtype]
    assert np.abs(decoded - samples).max() <= tolerance


def test_encode_flac_keeps_16_bit_precision():
    samples = noise(0.3, 16000)

    data = encode(samples, 16000, AudioOptions(format="flac"))

    info = sf.info(io.BytesIO(data))
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32")
    assert (info.format, info.subtype, info.samplerate) == ("FLAC", "PCM_16", 16000)
    assert np.abs(decoded - samples).max() <= 1 / 32767


@pytest.mark.parametrize("format", FORMATS)
def test_encode_empty_audio_gives_a_valid_file(format):
    options = AudioOptions(format=format)

    decoded, _ = decode(encode(np.zeros(0, dtype=np.float32), 24000, options), options, 24000)

    assert len(decoded) <= 0.05 * 24000


def test_encode_pcm_is_headerless_s16le():
    samples = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0], dtype=np.float32)

    data = encode(samples, 24000, AudioOptions(format="pcm", trim_silence=False))

    assert len(data) == 2 * len(samples)
    ints = np.frombuffer(data, dtype="<i2")
    assert ints[0] == 0
    assert abs(int(ints[1]) - 16384) <= 1
    assert ints[3] >= 32766 and ints[5] >= 32766  # full scale, and 2.0 is clipped, not wrapped
    assert ints[4] <= -32767


def test_encode_mp3_honours_the_bitrate():
    samples = noise(3.0, 44100)

    low = encode(samples, 44100, AudioOptions(format="mp3", bitrate_kbps=64))
    high = encode(samples, 44100, AudioOptions(format="mp3", bitrate_kbps=320))

    assert len(low) * 8 / 3.0 / 1000 == pytest.approx(64, rel=0.1)
    assert len(high) * 8 / 3.0 / 1000 == pytest.approx(320, rel=0.1)


@pytest.mark.parametrize("format", ["opus", "ogg", "m4a"])
def test_encode_higher_bitrate_gives_a_bigger_file(format):
    samples = noise(2.0, 48000)

    low = encode(samples, 48000, AudioOptions(format=format, bitrate_kbps=64, channels=2))
    high = encode(samples, 48000, AudioOptions(format=format, bitrate_kbps=256, channels=2))

    assert len(high) > 2 * len(low)


def test_encode_opus_raises_the_rate_to_one_opus_supports():
    options = AudioOptions(format="opus", sample_rate=44100)

    decoded, rate = decode(encode(sine(440, 1.0, 44100), 44100, options), options, 44100)

    assert rate == 48000
    assert len(decoded) == pytest.approx(48000, abs=48)


def test_encode_resamples_raw_engine_output_to_the_requested_rate():
    options = AudioOptions(sample_rate=16000)

    decoded, rate = decode(encode(sine(440, 1.0, 22050), 22050, options), options, 16000)

    assert rate == 16000
    assert len(decoded) == 16000


def test_encode_is_deterministic_for_ffmpeg_formats():
    samples = sine(440, 0.5, 24000)
    options = AudioOptions(format="mp3")

    assert encode(samples, 24000, options) == encode(samples, 24000, options)


@pytest.mark.parametrize(
    ("format", "requested", "sample_rate", "channels", "expected"),
    [
        ("mp3", 320, 44100, 1, 320),
        ("mp3", 320, 24000, 1, 160),
        ("mp3", 128, 8000, 2, 64),
        ("opus", 320, 48000, 1, 256),
        ("opus", 320, 48000, 2, 320),
        ("m4a", 128, 8000, 1, 48),
        ("m4a", 320, 48000, 2, 320),
        ("ogg", 200, 8000, 1, 200),
    ],
)
def test_codec_bitrate_kbps_caps_what_the_codec_cannot_carry(
    format, requested, sample_rate, channels, expected
):
    assert codec_bitrate_kbps(format, requested, sample_rate, channels) == expected


def test_vorbis_quality_follows_the_nominal_bitrate_table():
    assert [vorbis_quality(kbps) for kbps in (64, 128, 144, 320)] == [0.0, 4.0, 4.5, 9.0]


def test_run_ffmpeg_failure_carries_the_stderr_tail():
    with pytest.raises(FfmpegError) as caught:
        run_ffmpeg(
            [
                "-f",
                "f32le",
                "-ar",
                "24000",
                "-ac",
                "1",
                "-i",
                "pipe:0",
                "-c:a",
                "no_such_codec",
                "-f",
                "null",
                "-",
            ],
            input_bytes=b"\0" * 400,
        )

    assert caught.value.returncode not in (None, 0)
    assert "no_such_codec" in str(caught.value)


def test_run_ffmpeg_times_out_with_a_clear_error():
    with pytest.raises(FfmpegError, match="timed out"):
        run_ffmpeg(
            ["-re", "-f", "lavfi", "-i", "anullsrc=duration=30", "-f", "null", "-"], timeout_s=0.5
        )


def test_ffmpeg_executable_prefers_a_system_binary(monkeypatch):
    ffmpeg_executable.cache_clear()
    monkeypatch.setattr(ffmpeg_module.shutil, "which", lambda name: "/opt/bin/ffmpeg")
    try:
        assert ffmpeg_executable() == "/opt/bin/ffmpeg"
    finally:
        ffmpeg_executable.cache_clear()


def test_ffmpeg_executable_falls_back_to_imageio_ffmpeg(monkeypatch):
    import imageio_ffmpeg

    ffmpeg_executable.cache_clear()
    monkeypatch.setattr(ffmpeg_module.shutil, "which", lambda name: None)
    try:
        assert ffmpeg_executable() == imageio_ffmpeg.get_ffmpeg_exe()
    finally:
        ffmpeg_executable.cache_clear()
