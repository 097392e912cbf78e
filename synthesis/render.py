"""Text or SSML in, encoded audio out: the library the synthesis workers call.

    request = RenderRequest(voice_id="piper:en_US-joe-medium", text="Hello!", audio=AudioOptions())
    result = render(tenant=tenant, request=request)          # bytes, cached when identical
    stream = render_stream(request)                           # encoded bytes, sentence by sentence

The front-end turns the input into segments; the voice's engine (loaded once per process)
synthesises one chunk per segment; SSML prosody and pauses are applied per segment; the
pipeline applies speed, pitch, loudness and the output format.
"""

import logging
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from synthesis.audio import (
    AudioOptions,
    AudioStream,
    apply_segment_prosody,
    content_type,
    encode,
    process,
    silence,
)
from synthesis.audio.long import LongRender
from synthesis.cache import CacheDraft, audio_cache_key, cached_audio_get, cached_audio_read
from synthesis.engines.base import Engine, SynthesisRequest, VoiceInfo
from synthesis.engines.registry import catalog_voice_get, engine_get, inference_slot, loaded_engine
from synthesis.text import PreparedText, prepare
from synthesis.types import AudioChunk, Prosody, Segment

logger = logging.getLogger(__name__)

# Silence between sentences when the text itself asks for no pause.
DEFAULT_SENTENCE_SILENCE_MS = 250

# A render's watcher: called after each chunk with the segment it spoke and the seconds of
# output audio made so far (speed included). It stops the render by raising: a worker's
# watcher enforces the plan's audio length and notices a cancelled job, sentence by sentence.
Watch = Callable[[Segment, float], None]


@dataclass(frozen=True)
class RenderRequest:
    # "<engine>:<voice>" from the catalog; for a cloned or matched voice "<engine>:<profile>"
    # together with its conditioning_path.
    voice_id: str
    text: str | None = None
    ssml: str | None = None
    normalize: bool = True
    language: str = "en"
    audio: AudioOptions = field(default_factory=AudioOptions)
    sentence_silence_ms: int = DEFAULT_SENTENCE_SILENCE_MS
    # Cloned or matched voices: stored conditioning and a digest of it for the cache key.
    conditioning_path: Path | None = None
    conditioning_digest: str = ""


@dataclass(frozen=True)
class RenderResult:
    # The encoded audio: bytes, or (a long render) a temporary file that the caller owns and
    # deletes once it has stored it.
    data: bytes | Path
    content_type: str
    sample_rate: int
    duration_seconds: float
    billed_characters: int
    engine: str
    model_version: str
    cache_hit: bool
    cache_key: str = ""
    synthesis_seconds: float = 0.0
    # render(store_later=True) on a miss: the cache entry, for the caller to store.
    cache_draft: CacheDraft | None = None


def _voice(request: RenderRequest) -> VoiceInfo:
    """A catalog voice, or for cloned/matched voices the engine's own description of one."""
    if request.conditioning_path is None:
        return catalog_voice_get(request.voice_id)
    engine_name, _, name = request.voice_id.partition(":")
    info = engine_get(engine_name).info
    return VoiceInfo(
        id=request.voice_id,
        engine=engine_name,
        name=name,
        language=request.language,
        licence=info.licence,
        sample_rate=info.sample_rate,
    )


def _plan(request: RenderRequest) -> tuple[VoiceInfo, Engine, PreparedText]:
    """Validate the input and find the voice before any synthesis starts."""
    voice = _voice(request)
    prepared = prepare(text=request.text, ssml=request.ssml, normalize=request.normalize, language=request.language)
    return voice, loaded_engine(voice.engine), prepared


def _engine_request(request: RenderRequest, voice: VoiceInfo, engine: Engine) -> SynthesisRequest:
    native = engine.info.native_speed
    return SynthesisRequest(
        voice=voice.name,
        speed=request.audio.speed if native else 1.0,
        conditioning_path=request.conditioning_path,
    )


def _on_chunk(watch: Watch | None, *, seconds_per_second: float) -> Callable[[Segment, AudioChunk], None] | None:
    """Adapt a Watch to synthesize_chunks: count the output seconds the chunks will make."""
    if watch is None:
        return None
    made = 0.0

    def on_chunk(segment: Segment, chunk: AudioChunk) -> None:
        nonlocal made
        made += chunk.duration_seconds * seconds_per_second
        watch(segment, made)

    return on_chunk


def _output_seconds_per_second(request: RenderRequest, engine: Engine) -> float:
    """Output seconds per second of engine audio: the pipeline stretches by 1/speed when the
    engine did not apply the speed itself."""
    return 1.0 if engine.info.native_speed else 1.0 / request.audio.speed


def synthesize_chunks(
    engine: Engine, segments: Iterable[Segment], engine_request: SynthesisRequest, *, sentence_silence_ms: int,
    on_chunk: Callable[[Segment, AudioChunk], None] | None = None,
) -> Iterator[AudioChunk]:
    """One chunk per segment with SSML prosody applied, yielded as soon as it is synthesised.

    An explicit pause (SSML <break>) ends its own chunk; the implicit gap between sentences
    opens the next chunk instead, so no chunk waits for the following sentence and the last
    one gets no trailing gap.
    """
    pulled: deque[Segment] = deque()

    def feed() -> Iterator[Segment]:
        for segment in segments:
            pulled.append(segment)
            yield segment

    gap_before = 0
    produced = engine.synthesize(feed(), engine_request)
    while True:
        with inference_slot():  # the engine computes the next chunk here
            current = next(produced, None)
        if current is None:
            break
        segment = pulled.popleft()
        samples = current.samples
        if segment.prosody != Prosody():
            samples = apply_segment_prosody(
                samples,
                current.sample_rate,
                rate=segment.prosody.rate,
                pitch_semitones=segment.prosody.pitch_semitones,
                volume_db=segment.prosody.volume_db,
            )
        parts = [samples]
        if gap_before:
            parts.insert(0, silence(gap_before, current.sample_rate))
        if segment.pause_after_ms:
            parts.append(silence(segment.pause_after_ms, current.sample_rate))
        gap_before = 0 if segment.pause_after_ms else sentence_silence_ms
        samples = np.concatenate(parts) if len(parts) > 1 else samples
        chunk = AudioChunk(samples=samples.astype(np.float32, copy=False), sample_rate=current.sample_rate)
        if on_chunk is not None:
            on_chunk(segment, chunk)
        yield chunk


def render(*, tenant, request: RenderRequest, use_cache: bool = True, store_later: bool = False,
           watch: Watch | None = None) -> RenderResult:
    """The audio of `request`, from the cache when an identical request was rendered before.

    `watch` (see Watch) sees every chunk synthesised; a cache hit synthesises none.

    A miss is stored in the cache before this returns, or, with `store_later`, left to the
    caller as the result's `cache_draft` (a worker writes its file and inserts its row in the
    statement that settles the job, so a job that failed to settle never finds its own audio
    in the cache on its retry).
    """
    voice, engine, prepared = _plan(request)
    segments = list(prepared.segments)  # The cache key needs the normalised text.
    model_version = engine.model_version_for(voice.name)
    key = audio_cache_key(
        tenant_id=getattr(tenant, "pk", tenant),
        voice_id=voice.id,
        engine=engine.name,
        model_version=model_version,
        segments=segments,
        audio_options={"options": request.audio, "sentence_silence_ms": request.sentence_silence_ms},
        conditioning_digest=request.conditioning_digest,
    )
    if use_cache and (entry := cached_audio_get(tenant=tenant, key=key)) is not None:
        return RenderResult(
            data=cached_audio_read(entry=entry),
            content_type=entry.content_type,
            sample_rate=entry.sample_rate,
            duration_seconds=entry.duration_seconds,
            billed_characters=prepared.billed_characters,
            engine=engine.name,
            model_version=model_version,
            cache_hit=True,
            cache_key=key,
        )

    started = time.perf_counter()
    data, output_rate, duration = _render_audio(request, engine, _engine_request(request, voice, engine),
                                                segments, watch)
    synthesis_seconds = time.perf_counter() - started
    mime = content_type(request.audio.format, sample_rate=output_rate, channels=request.audio.channels)
    draft = None
    if use_cache:
        draft = CacheDraft(
            tenant_id=getattr(tenant, "pk", tenant),
            key=key,
            data=data,
            extension=request.audio.file_extension,
            voice_id=voice.id,
            engine=engine.name,
            model_version=model_version,
            format=request.audio.format,
            content_type=mime,
            sample_rate=output_rate,
            duration_seconds=duration,
        )
        if not store_later:
            draft.store()
            draft = None
    return RenderResult(
        data=data,
        content_type=mime,
        sample_rate=output_rate,
        duration_seconds=duration,
        billed_characters=prepared.billed_characters,
        engine=engine.name,
        model_version=model_version,
        cache_hit=False,
        cache_key=key,
        synthesis_seconds=synthesis_seconds,
        cache_draft=draft,
    )


def _render_audio(request: RenderRequest, engine: Engine, engine_request: SynthesisRequest,
                  segments: list[Segment], watch: Watch | None) -> tuple[bytes | Path, int, float]:
    """Synthesise and encode: the audio (bytes, or past PARLA_LONG_RENDER_SECONDS of engine
    audio a temporary file rendered in pieces; see synthesis.audio.long), its rate and length."""
    native = engine.info.native_speed
    chunks: list[AudioChunk] = []
    held = 0.0
    long: LongRender | None = None
    try:
        for chunk in synthesize_chunks(
            engine, segments, engine_request, sentence_silence_ms=request.sentence_silence_ms,
            on_chunk=_on_chunk(watch, seconds_per_second=_output_seconds_per_second(request, engine)),
        ):
            if long is not None:
                long.add(chunk.samples)
                continue
            chunks.append(chunk)
            held += chunk.duration_seconds
            if held > settings.PARLA_LONG_RENDER_SECONDS:  # too long to hold: on to disk
                long = LongRender(request.audio, chunk.sample_rate, apply_speed=not native)
                for held_chunk in chunks:
                    long.add(held_chunk.samples)
                chunks.clear()
        if long is not None:
            handle, name = tempfile.mkstemp(prefix="parla-render-", suffix=f".{request.audio.file_extension}")
            os.close(handle)
            target = Path(name)
            try:
                output_rate, duration = long.finish(target)
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            return target, output_rate, duration
    finally:
        if long is not None:
            long.close()
    sample_rate = chunks[0].sample_rate if chunks else engine.info.sample_rate
    samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
    processed, output_rate = process(samples, sample_rate, request.audio, apply_speed=not native)
    return encode(processed, output_rate, request.audio), output_rate, (
        len(processed) / output_rate if output_rate else 0.0)


@dataclass
class StreamRender:
    content_type: str
    sample_rate: int
    billed_characters: int
    engine: str
    chunks: Iterator[bytes]
    # Seconds of audio encoded so far (all of it once `chunks` is exhausted).
    seconds: Callable[[], float] = lambda: 0.0


def render_stream(request: RenderRequest, *, watch: Watch | None = None) -> StreamRender:
    """Validate everything now; the returned iterator synthesises and encodes lazily.

    `watch` (see Watch) sees every chunk before it is encoded.

    The first bytes (a WAV header at once; lossy formats after the first sentence) are
    available as soon as the first segment is synthesised.
    """
    voice, engine, prepared = _plan(request)
    engine_request = _engine_request(request, voice, engine)
    input_rate = voice.sample_rate or engine.info.sample_rate
    stream = AudioStream(request.audio, input_rate, apply_speed=not engine.info.native_speed)

    def generate() -> Iterator[bytes]:
        with stream:
            for chunk in synthesize_chunks(
                engine, prepared.segments, engine_request, sentence_silence_ms=request.sentence_silence_ms,
                on_chunk=_on_chunk(watch, seconds_per_second=_output_seconds_per_second(request, engine)),
            ):
                if data := stream.feed(chunk.samples):
                    yield data
            if tail := stream.finish():
                yield tail

    return StreamRender(
        content_type=stream.content_type,
        sample_rate=stream.sample_rate,
        billed_characters=prepared.billed_characters,
        engine=engine.name,
        chunks=generate(),
        seconds=lambda: stream.encoder.frames / stream.sample_rate,
    )


__all__ = ["RenderRequest", "RenderResult", "StreamRender", "Watch", "render", "render_stream", "synthesize_chunks"]
