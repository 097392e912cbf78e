"""Encode processed samples into the delivered file format.

Who encodes what, and why:
- WAV, FLAC and raw PCM: libsndfile (soundfile), in-process and exact.
- MP3, Opus, Ogg Vorbis and M4A/AAC: ffmpeg (libmp3lame, libopus, libvorbis, native aac).
  libsndfile 1.2 can write MP3/Opus/Vorbis too, but only takes a 0-1 "compression level"
  whose bitrate depends on the sample rate (and its Opus refuses 22.05/44.1 kHz), so an
  API that promises `bitrate_kbps` goes through ffmpeg, where the bitrate is exact. The
  streaming encoder uses the same ffmpeg encoders, so files and streams sound the same.

Bitrates a codec cannot carry are capped, never rejected (see `codec_bitrate_kbps`).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from synthesis.audio.ffmpeg import run_ffmpeg
from synthesis.audio.options import AudioOptions
from synthesis.audio.process import as_mono, resample, to_channels

SOUNDFILE_WAV_SUBTYPES = {"pcm_16": "PCM_16", "pcm_24": "PCM_24", "float": "FLOAT"}

# libvorbis is a quality-driven VBR codec and rejects many bitrate/rate/channel
# combinations in bitrate mode (8 kHz mono at 64 kbit/s, 44.1 kHz mono at 320 kbit/s...).
# Its -q scale is therefore driven from the requested bitrate with Xiph's nominal table
# (44.1 kHz stereo); speech at lower rates or in mono comes out smaller than nominal.
_VORBIS_NOMINAL_KBPS = (64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_VORBIS_QUALITY = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)


def codec_bitrate_kbps(format: str, requested_kbps: int, sample_rate: int, channels: int) -> int:
    """The bitrate the codec will really be asked for.

    - mp3: MPEG-1 layer III (32/44.1/48 kHz) goes up to 320; MPEG-2 (16/22.05/24 kHz) up
      to 160; MPEG-2.5 (8 kHz) up to 64.
    - opus: libopus takes at most 256 kbit/s per channel (mono 320 → 256).
    - m4a: ffmpeg's AAC encoder carries at most 6 bits per sample per channel
      (8 kHz mono → 48, 24 kHz mono → 144, 48 kHz stereo → 576).
    - ogg: nominal only (quality mode, see above).
    """
    if format == "mp3":
        if sample_rate >= 32000:
            ceiling = 320
        elif sample_rate >= 16000:
            ceiling = 160
        else:
            ceiling = 64
        return min(requested_kbps, ceiling)
    if format == "opus":
        return min(requested_kbps, 256 * channels)
    if format == "m4a":
        return min(requested_kbps, 6 * sample_rate * channels // 1000)
    return requested_kbps


def vorbis_quality(bitrate_kbps: int) -> float:
    """libvorbis -q value whose nominal bitrate (44.1 kHz stereo) matches `bitrate_kbps`."""
    return round(float(np.interp(bitrate_kbps, _VORBIS_NOMINAL_KBPS, _VORBIS_QUALITY)), 2)


def ffmpeg_codec_args(options: AudioOptions, sample_rate: int, *, streaming: bool) -> list[str]:
    """Encoder and muxer arguments (output side) for a lossy format. Shared with stream.py."""
    kbps = codec_bitrate_kbps(
        options.format, options.effective_bitrate_kbps or 0, sample_rate, options.channels
    )
    # bitexact keeps the muxer from writing the ffmpeg version into the file, so the same
    # input always gives the same bytes (cacheable, comparable in tests).
    common = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
    if options.format == "mp3":
        # On a pipe the Xing/LAME header cannot be rewritten at the end; a placeholder
        # would announce a wrong length, so streams go without one.
        xing = ["-write_xing", "0"] if streaming else []
        return [*common, "-c:a", "libmp3lame", "-b:a", f"{kbps}k", *xing, "-f", "mp3"]
    # Ogg pages are flushed every 100 ms when streaming (default 1 s) for a quick first byte.
    pages = ["-page_duration", "100000"] if streaming else []
    if options.format == "opus":
        return [*common, "-c:a", "libopus", "-b:a", f"{kbps}k", *pages, "-f", "ogg"]
    if options.format == "ogg":
        quality = vorbis_quality(kbps)
        return [*common, "-c:a", "libvorbis", "-q:a", f"{quality:g}", *pages, "-f", "ogg"]
    if options.format == "m4a":
        # faststart moves the index to the front so players can start before the end arrives;
        # it needs a seekable output, hence a temporary file.
        return [*common, "-c:a", "aac", "-b:a", f"{kbps}k", "-movflags", "+faststart", "-f", "ipod"]
    raise ValueError(f"{options.format!r} is not encoded with ffmpeg")


def raw_input_args(sample_rate: int, channels: int) -> list[str]:
    """ffmpeg input arguments for interleaved little-endian float32 on stdin."""
    return ["-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:0"]


def prepare(samples: np.ndarray, sample_rate: int, options: AudioOptions) -> tuple[np.ndarray, int]:
    """Bring samples to the output rate and channel layout of `options`.

    A no-op after process(); it lets encode() be called on raw engine output too, and is
    where Opus gets its allowed rate.
    """
    array = np.asarray(samples, dtype=np.float32)
    output_rate = options.output_sample_rate(sample_rate)
    if options.channels == 1:
        layout_ok = array.ndim == 1
    else:
        layout_ok = array.ndim == 2 and array.shape[1] == options.channels
    if output_rate == sample_rate and layout_ok:
        return np.ascontiguousarray(array), sample_rate
    mono = resample(as_mono(array), sample_rate, output_rate)
    return to_channels(mono, options.channels), output_rate


def encode(samples: np.ndarray, sample_rate: int, options: AudioOptions) -> bytes:
    """Encode float32 samples ((n,) or (n, channels)) at `sample_rate` into `options.format`."""
    data, rate = prepare(samples, sample_rate, options)
    if not len(data) and options.format not in ("wav", "pcm"):
        # libsndfile writes no FLAC header for zero frames and ffmpeg's muxers give up on
        # an empty stream; one silent frame (at most 125 µs) keeps the result a valid file.
        data = np.zeros((1, *data.shape[1:]), dtype=np.float32)
    match options.format:
        case "wav":
            subtype = SOUNDFILE_WAV_SUBTYPES[options.wav_subtype]
            return _soundfile_bytes(data, rate, format="WAV", subtype=subtype)
        case "flac":
            return _soundfile_bytes(data, rate, format="FLAC", subtype="PCM_16")
        case "pcm":
            return pcm_s16le(data, rate)
        case "mp3" | "opus" | "ogg" | "m4a":
            return _ffmpeg_encode(data, rate, options)
    raise ValueError(f"unknown audio format {options.format!r}")  # pragma: no cover - validated


def pcm_s16le(data: np.ndarray, sample_rate: int) -> bytes:
    """Headerless interleaved signed 16-bit little-endian, converted (and clipped) by libsndfile."""
    return _soundfile_bytes(data, sample_rate, format="RAW", subtype="PCM_16", endian="LITTLE")


def raw_samples(data: np.ndarray, sample_rate: int, wav_subtype: str) -> bytes:
    """The bytes a WAV of `wav_subtype` holds in its data chunk for `data` (for streaming)."""
    subtype = SOUNDFILE_WAV_SUBTYPES[wav_subtype]
    return _soundfile_bytes(data, sample_rate, format="RAW", subtype=subtype, endian="LITTLE")


def _soundfile_bytes(data: np.ndarray, sample_rate: int, **kwargs: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, sample_rate, **kwargs)
    return buffer.getvalue()


def _ffmpeg_encode(data: np.ndarray, sample_rate: int, options: AudioOptions) -> bytes:
    args = ["-y", *raw_input_args(sample_rate, options.channels)]
    args += ffmpeg_codec_args(options, sample_rate, streaming=False)
    pcm = np.ascontiguousarray(data, dtype="<f4").tobytes()
    # Output to a temporary file, not a pipe: MP4 needs to seek to write its index, and
    # MP3 goes back to the start to fill in the Xing/LAME header (length, gapless info).
    with tempfile.TemporaryDirectory(prefix="parla-encode-") as folder:
        target = Path(folder) / f"out.{options.file_extension}"
        run_ffmpeg([*args, str(target)], input_bytes=pcm)
        return target.read_bytes()
