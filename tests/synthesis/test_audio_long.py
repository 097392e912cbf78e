"""Long renders go through files on disk a piece at a time: the same audio as the in-memory
pipeline, with memory that does not grow with the length."""

import io
import math
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synthesis.audio import AudioOptions, encode, ffmpeg_decode, integrated_loudness, process, true_peak_dbtp
from synthesis.audio.long import LongRender, LoudnessMeter, TruePeakMeter

RATE = 22050


def _sentences(count: int, seed: int = 0) -> list[np.ndarray]:
    """Speech-like chunks: a voiced tone with a syllable rhythm and breath noise, then a pause."""
    rng = np.random.default_rng(seed)
    chunks = []
    for index in range(count):
        t = np.arange(int(RATE * rng.uniform(0.8, 2.0))) / RATE
        voiced = 0.3 * np.sin(2 * np.pi * (140 + 10 * (index % 7)) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        chunks.append(np.concatenate([(voiced + 0.05 * rng.standard_normal(t.size)).astype(np.float32),
                                      np.zeros(RATE // 4, np.float32)]))
    return chunks


def _long(options: AudioOptions, chunks: list[np.ndarray]) -> tuple[bytes, int, float]:
    with tempfile.TemporaryDirectory() as folder, LongRender(options, RATE) as long:
        for chunk in chunks:
            long.add(chunk)
        target = Path(folder) / f"out.{options.file_extension}"
        rate, seconds = long.finish(target)
        return target.read_bytes(), rate, seconds


def _decode(data: bytes, options: AudioOptions, rate: int) -> np.ndarray:
    if options.format == "pcm":
        samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768
    elif options.format in ("wav", "flac"):
        samples, _ = sf.read(io.BytesIO(data), dtype="float32")
    else:
        samples, _ = ffmpeg_decode(data)
    return samples if samples.ndim == 1 else samples[:, 0]


def test_loudness_meter_fed_in_pieces_measures_what_pyloudnorm_measures_whole():
    chunks = _sentences(30)
    meter = LoudnessMeter(RATE)

    for chunk in chunks:
        meter.feed(chunk)

    assert meter.integrated() == pytest.approx(integrated_loudness(np.concatenate(chunks), RATE), abs=1e-6)


def test_loudness_meter_of_silence_is_minus_infinity():
    meter = LoudnessMeter(RATE)
    meter.feed(np.zeros(RATE * 3, np.float32))

    assert meter.integrated() == -math.inf


def test_true_peak_meter_fed_in_pieces_matches_the_whole_signal():
    chunks = _sentences(10, seed=1)
    meter = TruePeakMeter(RATE)

    for chunk in chunks:
        meter.feed(chunk)
    meter.feed(np.zeros(0, np.float32), last=True)

    assert meter.dbtp() == pytest.approx(true_peak_dbtp(np.concatenate(chunks), RATE), abs=0.01)


@pytest.mark.parametrize("fmt, extra", [
    ("wav", {}), ("pcm", {}), ("flac", {"sample_rate": 48000}), ("mp3", {}), ("opus", {}), ("ogg", {}),
    ("m4a", {}), ("wav", {"speed": 1.25, "channels": 2}),
])
def test_long_render_gives_the_in_memory_pipelines_audio(fmt, extra):
    options = AudioOptions(format=fmt, loudness_lufs=-16.0, **extra)
    chunks = _sentences(25)
    processed, rate = process(np.concatenate(chunks), RATE, options)
    expected = _decode(encode(processed, rate, options), options, rate)

    data, long_rate, seconds = _long(options, chunks)
    got = _decode(data, options, long_rate)

    assert long_rate == rate
    assert seconds == pytest.approx(len(processed) / rate, abs=0.002)
    assert len(got) == pytest.approx(len(expected), abs=rate * 0.002)
    assert integrated_loudness(got, rate) == pytest.approx(integrated_loudness(expected, rate), abs=0.1)
    assert true_peak_dbtp(got, rate) <= options.true_peak_dbtp + 0.1


def test_long_render_keeps_a_silent_request_whole():
    options = AudioOptions(format="wav")
    data, rate, seconds = _long(options, [np.zeros(RATE * 2, np.float32)])

    assert seconds == pytest.approx(2.0)
    assert not _decode(data, options, rate).any()


def test_long_render_memory_does_not_grow_with_the_audio():
    # Memory of numpy buffers (tracemalloc sees them) for 3 and 12 minutes of audio: the
    # in-memory pipeline grows with the length, the long render does not.
    options = AudioOptions(format="mp3", loudness_lufs=-16.0, sample_rate=44100)
    sentence = _sentences(1)[0]

    def peak(run) -> int:
        tracemalloc.start()
        try:
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def long_run(minutes: int):
        def run():
            with tempfile.TemporaryDirectory() as folder, LongRender(options, RATE) as long:
                for _ in range(int(minutes * 60 / (sentence.size / RATE))):
                    long.add(sentence)
                long.finish(Path(folder) / "out.mp3")
        return run

    def memory_run(minutes: int):
        def run():
            whole = np.tile(sentence, int(minutes * 60 / (sentence.size / RATE)))
            encode(*process(whole, RATE, options), options)
        return run

    long_short, long_longer = peak(long_run(3)), peak(long_run(12))
    memory_longer = peak(memory_run(12))

    assert long_longer < 1.5 * long_short
    assert long_longer < memory_longer / 10


def _render_files() -> set[str]:
    return {path.name for path in Path(tempfile.gettempdir()).glob("parla-render-*")}


@pytest.mark.django_db
def test_a_job_past_the_threshold_is_rendered_on_disk_stored_and_cached(api_client_for, captured_jobs, settings):
    from django.core.files.storage import default_storage

    from synthesis.jobs import synthesis_job_execute
    from synthesis.models import SynthesisJob
    from tests.tenants.factories import TenantFactory

    tenant = TenantFactory()
    client = api_client_for(tenant)
    text = "Three sentences make this job longer than a second. Here is the second one. And then a third."
    body = {"text": text, "format": "mp3", "loudness": -16}
    before = _render_files()

    def run(threshold: float) -> SynthesisJob:
        settings.PARLA_LONG_RENDER_SECONDS = threshold
        job_id = client.post("/api/v1/jobs", body, format="json").json()["id"]
        synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)
        return SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)

    long = run(1.0)
    hit = run(1.0)  # identical: served from the cache entry the long render made

    assert (long.status, long.cache_hit, hit.cache_hit) == ("succeeded", False, True)
    def decoded(job: SynthesisJob) -> tuple[np.ndarray, int, int]:
        with default_storage.open(job.storage_path, "rb") as handle:
            data = handle.read()
        samples, rate = ffmpeg_decode(data)
        return (samples if samples.ndim == 1 else samples[:, 0]), rate, len(data)

    samples, rate, size = decoded(long)
    assert long.size_bytes == size
    assert len(samples) / rate == pytest.approx(long.audio_seconds, abs=0.08)
    assert hit.audio_seconds == long.audio_seconds and hit.size_bytes == long.size_bytes
    assert _render_files() == before  # the temporary files are gone
    body["text"] = text + " "  # another cache key: rendered in memory this time
    in_memory = run(3_600.0)
    assert in_memory.audio_seconds == pytest.approx(long.audio_seconds, abs=0.01)
    reference, reference_rate, _ = decoded(in_memory)
    assert integrated_loudness(samples, rate) == pytest.approx(integrated_loudness(reference, reference_rate), abs=0.2)
