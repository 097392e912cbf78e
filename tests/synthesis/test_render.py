"""The whole library path with the real Piper engine: text → engine → pipeline → bytes."""

import io

import numpy as np
import pytest
import soundfile as sf

from synthesis.audio import AudioOptions
from synthesis.engines.base import SynthesisRequest
from synthesis.engines.registry import loaded_engine
from synthesis.errors import InvalidSsml, InvalidText, UnknownVoice
from synthesis.models import CachedAudio
from synthesis.render import RenderRequest, render, render_stream, synthesize_chunks
from synthesis.types import Segment
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db
VOICE = "piper:en_US-joe-medium"


def _decode(data: bytes):
    return sf.read(io.BytesIO(data), dtype="float32")


def test_render_returns_decodable_audio_in_the_requested_format():
    tenant = TenantFactory()
    request = RenderRequest(voice_id=VOICE, text="Hello from Parla. It costs $3.50.",
                            audio=AudioOptions(format="flac", sample_rate=16000))

    result = render(tenant=tenant, request=request)
    samples, rate = _decode(result.data)

    assert (rate, result.sample_rate, result.content_type) == (16000, 16000, "audio/flac")
    assert abs(len(samples) / rate - result.duration_seconds) < 0.01
    assert 1.5 < result.duration_seconds < 8
    assert result.billed_characters == len("Hello from Parla. It costs $3.50.")
    assert (result.engine, result.cache_hit) == ("piper", False)


def test_render_identical_request_is_served_from_the_cache(monkeypatch):
    tenant = TenantFactory()
    request = RenderRequest(voice_id=VOICE, text="Cache me if you can.")
    first = render(tenant=tenant, request=request)
    monkeypatch.setattr("synthesis.render.synthesize_chunks", lambda *a, **k: pytest.fail("synthesized again"))

    second = render(tenant=tenant, request=request)

    assert second.cache_hit is True
    assert second.data == first.data
    assert CachedAudio.objects.for_tenant(tenant).get().hits == 1


def test_render_different_parameters_miss_the_cache():
    tenant = TenantFactory()
    base = RenderRequest(voice_id=VOICE, text="Same words.")
    render(tenant=tenant, request=base)

    other = render(tenant=tenant, request=RenderRequest(voice_id=VOICE, text="Same words.",
                                                        audio=AudioOptions(pitch_semitones=2)))

    assert other.cache_hit is False
    assert CachedAudio.objects.for_tenant(tenant).count() == 2


def test_render_ssml_break_adds_the_pause():
    tenant = TenantFactory()
    plain = render(tenant=tenant, request=RenderRequest(
        voice_id=VOICE, ssml="<speak>One. Two.</speak>", sentence_silence_ms=0), use_cache=False)
    paused = render(tenant=tenant, request=RenderRequest(
        voice_id=VOICE, ssml='<speak>One. <break time="2s"/> Two.</speak>', sentence_silence_ms=0), use_cache=False)

    assert paused.duration_seconds - plain.duration_seconds > 1.5


def test_render_bad_input_fails_before_synthesis(monkeypatch):
    monkeypatch.setattr("synthesis.render.loaded_engine", lambda name: pytest.fail("engine loaded"))
    tenant = TenantFactory()

    with pytest.raises(InvalidSsml):
        render(tenant=tenant, request=RenderRequest(voice_id=VOICE, ssml="<speak><audio src='x'/></speak>"))
    with pytest.raises(InvalidText):
        render(tenant=tenant, request=RenderRequest(voice_id=VOICE, text="   "))
    with pytest.raises(UnknownVoice):
        render(tenant=tenant, request=RenderRequest(voice_id="piper:nobody", text="Hi"))


def test_synthesize_chunks_puts_sentence_silence_between_but_not_after():
    engine = loaded_engine("piper")
    segments = [Segment("One."), Segment("Two.")]
    request = SynthesisRequest(voice="en_US-joe-medium")

    with_gap = list(synthesize_chunks(engine, segments, request, sentence_silence_ms=500))
    tail = with_gap[-1].samples[-int(0.4 * with_gap[-1].sample_rate):]
    gap = with_gap[1].samples[:int(0.45 * with_gap[1].sample_rate)]
    first_end = with_gap[0].samples[-int(0.45 * with_gap[0].sample_rate):]

    # The gap opens the second chunk, so the first is not held back for the next sentence.
    assert np.abs(gap).max() == 0.0
    assert np.abs(first_end).max() > 0.0
    assert np.abs(tail).max() > 0.0


def test_synthesize_chunks_yields_the_first_chunk_before_the_next_sentence_is_synthesised():
    engine = loaded_engine("piper")
    pulled = []

    def segments():
        for text in ("One.", "Two.", "Three."):
            pulled.append(text)
            yield Segment(text)

    chunks = synthesize_chunks(engine, segments(), SynthesisRequest(voice="en_US-joe-medium"),
                               sentence_silence_ms=300)
    next(chunks)

    assert pulled == ["One."]


def test_render_stream_yields_audio_sentence_by_sentence():
    request = RenderRequest(voice_id=VOICE, text="First sentence here. Second one follows. And a third.",
                            audio=AudioOptions(format="wav"))

    stream = render_stream(request)
    parts = list(stream.chunks)

    assert stream.content_type.startswith("audio/wav")
    assert len(parts) >= 3
    assert parts[0][:4] == b"RIFF"


def test_render_stream_concatenation_decodes_to_full_audio():
    request = RenderRequest(voice_id=VOICE, text="First sentence here. Second one follows.",
                            audio=AudioOptions(format="mp3"))

    data = b"".join(render_stream(request).chunks)
    samples, rate = _decode(data)

    assert len(samples) / rate > 1.5


@pytest.fixture
def tiny_xtts_enabled(settings, tmp_path):
    from synthesis.engines import registry
    from tests.synthesis import tiny_models

    tiny_models.build_xtts(tmp_path)
    settings.PARLA_MODEL_DIR = tmp_path
    settings.PARLA_ENGINES = ["piper", "xtts"]
    registry.reset_engines()
    yield tmp_path
    registry.reset_engines()


def test_render_cloned_voice_through_the_registry_with_stored_conditioning(tiny_xtts_enabled, tmp_path):
    """A tiny random-weight XTTS stands in for the real weights (no hub here): noise, right shape."""
    from synthesis.engines.registry import loaded_engine
    from tests.synthesis import tiny_models

    xtts = loaded_engine("xtts")
    reference = tiny_models.write_reference_wav(tmp_path / "ref.wav", seconds=3.0, pitch=160.0)
    conditioning = tmp_path / "voice.pth"
    xtts.save_conditioning(xtts.compute_conditioning([reference]), conditioning)
    request = RenderRequest(voice_id="xtts:narrator", text="Hello there.", conditioning_path=conditioning,
                            conditioning_digest="c1", audio=AudioOptions(format="wav"))

    result = render(tenant=TenantFactory(), request=request)
    samples, rate = _decode(result.data)

    assert (result.engine, rate) == ("xtts", 24000)
    assert len(samples) > 0 and np.isfinite(samples).all()


def _overlap_of_four_threads(monkeypatch, engine) -> int:
    """The most Piper inferences that ran at once while four threads each spoke two sentences."""
    import threading

    running, most, lock = 0, 0, threading.Lock()
    real = engine.synthesize

    def counted(segments, request):
        nonlocal running, most
        produced = real(segments, request)
        while True:
            with lock:
                running += 1
                most = max(most, running)
            try:
                chunk = next(produced, None)
            finally:
                with lock:
                    running -= 1
            if chunk is None:
                return
            yield chunk

    monkeypatch.setattr(engine, "synthesize", counted)
    barrier = threading.Barrier(4)

    def speak():
        barrier.wait()
        list(synthesize_chunks(engine, [Segment("One more sentence."), Segment("And another.")],
                               SynthesisRequest(voice="en_US-joe-medium"), sentence_silence_ms=0))

    threads = [threading.Thread(target=speak) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return most


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_process_runs_at_most_its_inference_concurrency_at_once(monkeypatch, settings, concurrency):
    from synthesis.engines import registry

    settings.PARLA_ENGINE_CONCURRENCY = concurrency
    registry._inference_slots.cache_clear()
    try:
        most = _overlap_of_four_threads(monkeypatch, loaded_engine("piper"))
    finally:
        registry._inference_slots.cache_clear()

    assert most == concurrency


def test_inference_concurrency_defaults_to_the_cpus_each_inference_can_use(monkeypatch, settings):
    from synthesis.engines import registry

    monkeypatch.setattr(registry.os, "sched_getaffinity", lambda pid: set(range(8)))
    settings.PARLA_ENGINE_CONCURRENCY = 0
    settings.PARLA_ENGINE_THREADS = 2
    assert registry.inference_concurrency() == 4
    settings.PARLA_ENGINE_THREADS = 16
    assert registry.inference_concurrency() == 1
    settings.PARLA_ENGINE_CONCURRENCY = 3
    assert registry.inference_concurrency() == 3
