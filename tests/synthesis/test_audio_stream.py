import gc
import io

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from synthesis.audio.encode import encode
from synthesis.audio.options import AudioOptions
from synthesis.audio.process import integrated_loudness, process, resample
from synthesis.audio.stream import AudioStream, StreamEncoder, streaming_wav_header
from synthesis.errors import InvalidAudioOptions

ENGINE_RATE = 24000


def sine(
    freq: float, seconds: float, sample_rate: int = ENGINE_RATE, amplitude: float = 0.5
) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def uneven_chunks(samples: np.ndarray, seed: int = 3) -> list[np.ndarray]:
    """Split into chunks of 1 to ~5000 samples, odd lengths included, as engines might."""
    rng = np.random.default_rng(seed)
    chunks, start = [samples[:1]], 1
    while start < len(samples):
        size = int(rng.integers(50, 5000)) | 1
        chunks.append(samples[start : start + size])
        start += size
    return chunks


def stream_bytes(encoder: StreamEncoder | AudioStream, chunks: list[np.ndarray]) -> bytes:
    return b"".join([*(encoder.feed(chunk) for chunk in chunks), encoder.finish()])


def decode(data: bytes, options: AudioOptions, sample_rate: int) -> tuple[np.ndarray, int]:
    if options.format == "pcm":
        ints = np.frombuffer(data, dtype="<i2").reshape(-1, options.channels)
        return ints.astype(np.float32) / 32768, sample_rate
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples, rate


def highpass_energy(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy above 8 kHz in 5 ms windows, first and last 100 ms left out (codec edges).

    A 440 Hz tone has nothing up there but codec noise; a seam discontinuity is a
    broadband click and shows up as a spike.
    """
    sos = scipy.signal.butter(8, 8000, "highpass", fs=sample_rate, output="sos")
    filtered = scipy.signal.sosfiltfilt(sos, samples.astype(np.float64))
    window = sample_rate * 5 // 1000
    count = len(filtered) // window
    energy = np.square(filtered[: count * window]).reshape(count, window).mean(axis=1)
    return energy[20:-20]


@pytest.mark.parametrize("format", ["wav", "pcm"])
@pytest.mark.parametrize("sample_rate", [None, 48000, 22050])
def test_stream_encoder_chunks_match_a_one_shot_encode(format, sample_rate):
    options = AudioOptions(format=format, sample_rate=sample_rate)
    tone = sine(440, 2.0)
    output_rate = options.output_sample_rate(ENGINE_RATE)

    encoder = StreamEncoder(options, ENGINE_RATE)

    streamed, _ = decode(stream_bytes(encoder, uneven_chunks(tone)), options, output_rate)
    one_shot = encode(resample(tone, ENGINE_RATE, output_rate), output_rate, options)
    whole, _ = decode(one_shot, options, output_rate)

    assert streamed.shape == whole.shape
    # Same resampler state across seams, same int16 conversion: at most one LSB apart.
    assert np.abs(streamed - whole).max() <= 1 / 32767


@pytest.mark.parametrize("format", ["mp3", "opus", "ogg"])
def test_stream_encoder_lossy_seams_are_click_free(format):
    options = AudioOptions(format=format, sample_rate=48000)
    tone = sine(440, 3.0)
    glitched = np.concatenate([tone[:ENGINE_RATE], tone[ENGINE_RATE + 37 :]])  # one real click

    encoder = StreamEncoder(options, ENGINE_RATE)

    streamed, rate = decode(stream_bytes(encoder, uneven_chunks(tone)), options, 48000)
    whole, _ = decode(encode(resample(tone, ENGINE_RATE, 48000), 48000, options), options, 48000)
    clicked, _ = decode(
        encode(resample(glitched, ENGINE_RATE, 48000), 48000, options), options, 48000
    )

    clean_peak = highpass_energy(whole[:, 0], rate).max()
    assert highpass_energy(clicked[:, 0], rate).max() > 100 * clean_peak  # the probe sees clicks
    assert highpass_energy(streamed[:, 0], rate).max() <= 3 * clean_peak + 1e-12


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("format", ["wav", "pcm", "mp3", "opus", "ogg"])
def test_stream_encoder_concatenated_bytes_decode_to_the_full_duration(format, channels):
    options = AudioOptions(format=format, channels=channels, sample_rate=44100)
    encoder = StreamEncoder(options, ENGINE_RATE)

    decoded, rate = decode(
        stream_bytes(encoder, uneven_chunks(sine(440, 2.0))), options, encoder.sample_rate
    )

    assert rate == encoder.sample_rate == options.output_sample_rate(ENGINE_RATE)
    assert decoded.shape[1] == channels
    # MP3 streams carry no LAME header (a pipe cannot be rewound), so the encoder delay
    # and padding of about 50 ms stay in.
    assert len(decoded) / rate == pytest.approx(2.0, abs=0.06)


@pytest.mark.parametrize("wav_subtype", ["pcm_16", "pcm_24", "float"])
def test_stream_encoder_first_wav_feed_is_a_decodable_start(wav_subtype):
    options = AudioOptions(format="wav", wav_subtype=wav_subtype, sample_rate=48000, channels=2)
    encoder = StreamEncoder(options, ENGINE_RATE)

    first = encoder.feed(sine(440, 0.1))

    assert first[:4] == b"RIFF" and first[8:12] == b"WAVE"
    info = sf.info(io.BytesIO(first))
    assert (info.samplerate, info.channels) == (48000, 2)
    decoded, _ = sf.read(io.BytesIO(first), dtype="float32")
    assert 0 < len(decoded) <= 0.1 * 48000
    encoder.close()


def test_stream_encoder_sends_the_wav_header_even_before_any_audio():
    encoder = StreamEncoder(AudioOptions(format="wav"), ENGINE_RATE)

    header = encoder.feed(np.zeros(0, dtype=np.float32))

    assert header == streaming_wav_header(ENGINE_RATE, 1, "pcm_16")
    assert header[4:8] == b"\xff\xff\xff\xff"
    assert header[-4:] == b"\xff\xff\xff\xff"
    assert encoder.finish() == b""


def test_stream_encoder_returns_lossy_bytes_before_finish_without_deadlocking():
    encoder = StreamEncoder(AudioOptions(format="mp3", sample_rate=48000), ENGINE_RATE)
    tone = sine(440, 20.0)

    # 20 s of audio is far more than the OS pipe buffers hold in either direction, so this
    # only completes if stdout is drained while stdin is written.
    early = b"".join(
        encoder.feed(tone[start : start + 2400]) for start in range(0, len(tone), 2400)
    )
    rest = encoder.finish()

    assert len(early) > 0
    decoded, rate = sf.read(io.BytesIO(early + rest))
    assert len(decoded) / rate == pytest.approx(20.0, abs=0.06)


def test_stream_encoder_close_stops_ffmpeg():
    encoder = StreamEncoder(AudioOptions(format="opus"), ENGINE_RATE)
    encoder.feed(sine(440, 0.5))

    encoder.close()

    assert encoder._pipe is not None and not encoder._pipe.running


def test_stream_encoder_dropped_without_close_stops_ffmpeg():
    encoder = StreamEncoder(AudioOptions(format="mp3"), ENGINE_RATE)
    encoder.feed(sine(440, 0.2))
    assert encoder._pipe is not None
    process = encoder._pipe._process

    del encoder
    gc.collect()

    assert process.poll() is not None


def test_stream_encoder_context_manager_stops_ffmpeg_on_error():
    with (
        pytest.raises(RuntimeError),
        StreamEncoder(AudioOptions(format="mp3"), ENGINE_RATE) as encoder,
    ):
        encoder.feed(sine(440, 0.2))
        raise RuntimeError("client went away")

    assert encoder._pipe is not None and not encoder._pipe.running


@pytest.mark.parametrize("format", ["flac", "m4a"])
def test_stream_encoder_rejects_file_only_formats(format):
    with pytest.raises(InvalidAudioOptions) as caught:
        StreamEncoder(AudioOptions(format=format), ENGINE_RATE)

    assert "format" in caught.value.extra["fields"]


def test_stream_encoder_content_type_describes_the_stream():
    assert StreamEncoder(AudioOptions(format="pcm"), 22050).content_type == (
        "audio/pcm; rate=22050; channels=1; encoding=s16le"
    )
    with StreamEncoder(AudioOptions(format="opus"), 22050) as encoder:
        assert encoder.content_type == "audio/ogg; codecs=opus"
        assert encoder.sample_rate == 24000


def test_stream_encoder_rejects_feed_after_finish():
    encoder = StreamEncoder(AudioOptions(format="pcm"), ENGINE_RATE)
    encoder.finish()

    with pytest.raises(RuntimeError):
        encoder.feed(sine(440, 0.1))


def test_audio_stream_matches_whole_file_processing_for_wav():
    options = AudioOptions(format="wav", sample_rate=48000, volume_db=-3)
    gap = np.zeros(7000, dtype=np.float32)
    speech = np.concatenate([gap, gap, sine(300, 1.0), gap, sine(500, 0.7), gap, gap])

    stream = AudioStream(options, ENGINE_RATE)

    streamed, rate = decode(stream_bytes(stream, uneven_chunks(speech)), options, 48000)
    processed, processed_rate = process(speech, ENGINE_RATE, options)

    assert rate == processed_rate == 48000
    assert len(streamed) == len(processed)
    assert np.abs(streamed[:, 0] - processed).max() <= 2 / 32768  # int16 quantisation only


def test_audio_stream_normalises_loudness_from_the_first_sentence():
    options = AudioOptions(format="pcm", loudness_lufs=-20)
    sentence = sine(220, 1.0, amplitude=0.05) * np.hanning(ENGINE_RATE).astype(np.float32)
    sentences = [sentence, sentence, sentence]

    decoded, rate = decode(
        stream_bytes(AudioStream(options, ENGINE_RATE), sentences), options, ENGINE_RATE
    )

    assert integrated_loudness(decoded[:, 0], rate) == pytest.approx(-20, abs=1.0)
