"""Encode audio as it is synthesised, for chunked HTTP responses.

- wav: a header with "unknown length" (RIFF and data sizes 0xFFFFFFFF, the convention
  streaming players and libsndfile/ffmpeg accept) written by libsndfile, then raw samples.
- pcm: raw s16le samples.
- mp3, opus, ogg (Vorbis): one long-running ffmpeg per stream, raw float32 in on stdin,
  the encoded stream out on stdout (see FfmpegPipe). Same encoders and bitrates as the
  file path in encode.py; libsndfile would need a seekable file object and only offers an
  approximate bitrate.
flac and m4a are file-only (their headers are rewritten at the end).

Every chunk goes through one soxr.ResampleStream for the whole stream: a resampler
restarted per chunk would lose its filter history and click at every seam.
"""

from __future__ import annotations

import io
from types import TracebackType
from typing import Self

import numpy as np
import soundfile as sf
import soxr

from synthesis.audio.encode import (
    SOUNDFILE_WAV_SUBTYPES,
    ffmpeg_codec_args,
    pcm_s16le,
    raw_input_args,
    raw_samples,
)
from synthesis.audio.ffmpeg import DEFAULT_TIMEOUT_S, FfmpegPipe
from synthesis.audio.options import STREAMABLE_FORMATS, AudioOptions, content_type
from synthesis.audio.process import ChunkProcessor, as_mono, to_channels
from synthesis.errors import InvalidAudioOptions

_UNKNOWN_SIZE = b"\xff\xff\xff\xff"


def streaming_wav_header(sample_rate: int, channels: int, wav_subtype: str) -> bytes:
    """A WAV header written by libsndfile, with its sizes set to "unknown" (0xFFFFFFFF)."""
    buffer = io.BytesIO()
    subtype = SOUNDFILE_WAV_SUBTYPES[wav_subtype]
    with sf.SoundFile(buffer, "w", sample_rate, channels, subtype, format="WAV"):
        # Closing an empty file leaves just the header: fmt (plus fact and PEAK for float,
        # whose PEAK then says 0.0; players ignore it, and a stream cannot know it upfront).
        pass
    header = bytearray(buffer.getvalue())
    data_at = header.rfind(b"data")
    if not header.startswith(b"RIFF") or data_at < 0 or data_at + 8 != len(header):
        raise RuntimeError("unexpected WAV header layout from libsndfile")
    header[4:8] = _UNKNOWN_SIZE
    header[data_at + 4 : data_at + 8] = _UNKNOWN_SIZE
    return bytes(header)


class StreamEncoder:
    """Incremental encoder: `feed()` mono float32 chunks at `input_sample_rate`, get bytes back.

    The concatenation of everything `feed()` and `finish()` return is one valid file of
    `options.format` at `sample_rate` (the output rate) with `options.channels` channels.
    For wav the first `feed()` returns the header at once; lossy encoders may return b""
    for the first few chunks (encoder lookahead) and catch up later. Call `close()` (or use
    it as a context manager) when a stream is abandoned, so ffmpeg does not linger.
    """

    def __init__(
        self, options: AudioOptions, input_sample_rate: int, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        if options.format not in STREAMABLE_FORMATS:
            streamable = ", ".join(sorted(STREAMABLE_FORMATS))
            raise InvalidAudioOptions(
                f"The {options.format} format cannot be streamed; use one of {streamable}.",
                extra={"fields": {"format": [f"Streaming supports {streamable}."]}},
            )
        self.options = options
        self.input_sample_rate = input_sample_rate
        self.sample_rate = options.output_sample_rate(input_sample_rate)
        self.channels = options.channels
        self._resampler = (
            soxr.ResampleStream(
                input_sample_rate, self.sample_rate, 1, dtype="float32", quality="HQ"
            )
            if self.sample_rate != input_sample_rate
            else None
        )
        self._header_sent = False
        self._finished = False
        self.frames = 0  # encoded so far, at the output rate
        self._pipe: FfmpegPipe | None = None
        if options.format in ("mp3", "opus", "ogg"):
            # Started now so ffmpeg's start-up overlaps with synthesis of the first chunk.
            self._pipe = FfmpegPipe(
                [
                    *raw_input_args(self.sample_rate, self.channels),
                    *ffmpeg_codec_args(options, self.sample_rate, streaming=True),
                    # Hand each packet to stdout at once instead of filling a 32 KiB buffer.
                    "-flush_packets",
                    "1",
                    "pipe:1",
                ],
                timeout_s=timeout_s,
            )

    @property
    def content_type(self) -> str:
        return content_type(
            self.options.format, sample_rate=self.sample_rate, channels=self.channels
        )

    def feed(self, samples: np.ndarray) -> bytes:
        """Encode one chunk; return the bytes ready so far (possibly b"" for lossy formats)."""
        if self._finished:
            raise RuntimeError("StreamEncoder.feed() called after finish()")
        mono = as_mono(samples)
        if self._resampler is not None:
            mono = np.asarray(self._resampler.resample_chunk(mono), dtype=np.float32)
        return self._encode(mono)

    def finish(self) -> bytes:
        """Flush the resampler and the encoder; return the last bytes of the stream."""
        if self._finished:
            return b""
        tail = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            tail = np.asarray(self._resampler.resample_chunk(tail, last=True), dtype=np.float32)
        data = self._encode(tail)
        self._finished = True
        if self._pipe is not None:
            data += self._pipe.close()
        return data

    def close(self) -> None:
        """Abandon the stream (client went away): stop ffmpeg without waiting for its output."""
        self._finished = True
        if self._pipe is not None:
            self._pipe.abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None or not self._finished:
            self.close()

    def _encode(self, mono: np.ndarray) -> bytes:
        frames = to_channels(mono, self.channels)
        self.frames += len(frames)
        match self.options.format:
            case "wav":
                data = b""
                if not self._header_sent:
                    self._header_sent = True
                    data = streaming_wav_header(
                        self.sample_rate, self.channels, self.options.wav_subtype
                    )
                if frames.size:
                    data += raw_samples(frames, self.sample_rate, self.options.wav_subtype)
                return data
            case "pcm":
                return pcm_s16le(frames, self.sample_rate) if frames.size else b""
        assert self._pipe is not None
        if not frames.size:
            return self._pipe.take()
        return self._pipe.write(np.ascontiguousarray(frames, dtype="<f4").tobytes())


class AudioStream:
    """ChunkProcessor followed by StreamEncoder: engine chunks in, response bytes out.

    Feed it what `process()` would get (mono engine output at the engine's rate, SSML
    pauses and per-segment prosody already applied).
    """

    def __init__(
        self,
        options: AudioOptions,
        input_sample_rate: int,
        *,
        apply_speed: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.processor = ChunkProcessor(options, input_sample_rate, apply_speed=apply_speed)
        self.encoder = StreamEncoder(options, input_sample_rate, timeout_s=timeout_s)

    @property
    def content_type(self) -> str:
        return self.encoder.content_type

    @property
    def sample_rate(self) -> int:
        return self.encoder.sample_rate

    def feed(self, samples: np.ndarray) -> bytes:
        return self.encoder.feed(self.processor.process(samples))

    def finish(self) -> bytes:
        return self.encoder.feed(self.processor.finish()) + self.encoder.finish()

    def close(self) -> None:
        self.encoder.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.encoder.__exit__(exc_type, exc, traceback)
