"""Audio pipeline: engine samples → processed samples → encoded file or stream.

Usage::

    options = AudioOptions.from_request(body["audio"])
    samples, rate = process(chunk.samples, chunk.sample_rate, options)
    data = encode(samples, rate, options)          # bytes, options.content_type

    with AudioStream(options, engine_rate) as stream:   # chunked responses
        for chunk in chunks:
            yield stream.feed(chunk.samples)
        yield stream.finish()
"""

from synthesis.audio.encode import codec_bitrate_kbps, encode
from synthesis.audio.ffmpeg import FfmpegError, ffmpeg_decode, ffmpeg_executable
from synthesis.audio.options import (
    FORMATS,
    SAMPLE_RATES,
    STREAMABLE_FORMATS,
    AudioOptions,
    content_type,
    file_extension,
)
from synthesis.audio.process import (
    ChunkProcessor,
    apply_segment_prosody,
    integrated_loudness,
    process,
    silence,
    true_peak_dbtp,
)
from synthesis.audio.stream import AudioStream, StreamEncoder

__all__ = [
    "FORMATS",
    "SAMPLE_RATES",
    "STREAMABLE_FORMATS",
    "AudioOptions",
    "AudioStream",
    "ChunkProcessor",
    "FfmpegError",
    "StreamEncoder",
    "apply_segment_prosody",
    "codec_bitrate_kbps",
    "content_type",
    "encode",
    "ffmpeg_decode",
    "ffmpeg_executable",
    "file_extension",
    "integrated_loudness",
    "process",
    "silence",
    "true_peak_dbtp",
]
