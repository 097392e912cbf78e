"""Check what a header claims, then decode under limits to mono float32 at 24 kHz.

WAV, FLAC, OGG and MP3 go through libsndfile in-process, read block by block and capped at
MAX_FILE_SECONDS of frames, so a tiny file that unpacks into hours of silence costs at most
two minutes of audio. M4A (and any file libsndfile refuses to open) goes through an ffmpeg
subprocess with a wall-clock timeout and `-t`, decoding straight to 24 kHz mono.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from synthesis.audio.ffmpeg import FfmpegError, ffmpeg_executable
from voices.audio_checks import limits
from voices.errors import AudioCorrupt, AudioTooLong, UnsupportedAudio

logger = logging.getLogger(__name__)

_UNDECODABLE = "The file could not be decoded; it may be damaged or incomplete."
# libsndfile's names for what each sniffed container may open as.
_SOUNDFILE_FORMATS = {
    "wav": {"WAV", "WAVEX", "RF64"},
    "flac": {"FLAC"},
    "ogg": {"OGG"},
    "mp3": {"MP3"},
}
# SECURITY: ffmpeg is told the demuxer instead of probing. Probing would let a crafted file
# pick a demuxer such as HLS or concat that opens other files or URLs.
_FFMPEG_DEMUXERS = {"wav": "wav", "flac": "flac", "ogg": "ogg", "mp3": "mp3", "m4a": "mov"}
# Formats whose header gives an exact length, so a shortfall after decoding means truncation.
# MP3 lengths without a Xing header are estimates, and OGG's comes from its own last page.
_EXACT_LENGTH_FORMATS = {"wav", "flac", "m4a"}
_PCM_FORMAT_TAGS = {0x0001, 0x0003, 0xFFFE}  # integer PCM, IEEE float, WAVE_FORMAT_EXTENSIBLE
_UNKNOWN_WAV_SIZES = {0, 0xFFFFFFFF}  # what streaming writers put in before they know


@dataclass(frozen=True, eq=False)
class Decoded:
    mono: np.ndarray  # float32 at limits.CANONICAL_SAMPLE_RATE, not yet trimmed
    source_sample_rate: int
    source_channels: int
    clipping_ratio: float


def decode_reference(data: bytes, source_format: str) -> Decoded:
    """Decode sniffed bytes; every failure of the file becomes a ReferenceRejected."""
    if source_format == "wav":
        _check_wav_header(data)
    if source_format == "m4a":
        return _decode_ffmpeg(data, source_format)
    try:
        opened = sf.SoundFile(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - libsndfile reports damage as many exception types
        logger.info(
            "reference_decode.soundfile_refused", extra={"format": source_format, "error": str(exc)}
        )
        return _decode_ffmpeg(data, source_format)
    with opened:
        if opened.format not in _SOUNDFILE_FORMATS[source_format]:
            raise AudioCorrupt(_UNDECODABLE, extra={"format": source_format})
        return _decode_soundfile(opened, data, source_format)


def _decode_soundfile(opened: sf.SoundFile, data: bytes, source_format: str) -> Decoded:
    rate, channels = int(opened.samplerate), int(opened.channels)
    _check_stream(rate, channels)
    claimed_frames = opened.frames if 0 < opened.frames < 2**62 else None
    if claimed_frames is not None and source_format != "wav":
        _check_claim(claimed_frames / rate, len(data), source_format)

    cap = int(limits.MAX_FILE_SECONDS * rate)
    resampler = None
    if rate != limits.CANONICAL_SAMPLE_RATE:
        resampler = soxr.ResampleStream(
            rate, limits.CANONICAL_SAMPLE_RATE, 1, dtype="float32", quality="HQ"
        )
    pieces: list[np.ndarray] = []
    frames = clipped = 0
    while True:
        try:
            wanted = min(limits.DECODE_BLOCK_FRAMES, cap + 1 - frames)
            block = opened.read(wanted, dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - as above: a damaged stream, not a server fault
            logger.info(
                "reference_decode.read_failed", extra={"format": source_format, "error": str(exc)}
            )
            raise AudioCorrupt(_UNDECODABLE, extra={"format": source_format}) from exc
        if block.shape[0] == 0:
            break
        if not np.isfinite(block).all():
            raise AudioCorrupt("The file contains invalid (NaN or infinite) samples.")
        frames += block.shape[0]
        if frames > cap:
            raise _too_long_file()
        clipped += int(np.count_nonzero(np.abs(block) >= limits.CLIP_LEVEL))
        mono = block[:, 0].copy() if channels == 1 else block.mean(axis=1, dtype=np.float32)
        pieces.append(resampler.resample_chunk(mono) if resampler else mono)
    if resampler is not None:
        pieces.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))

    if claimed_frames is not None and source_format in _EXACT_LENGTH_FORMATS:
        _check_truncation(claimed_frames / rate, frames / rate)
    mono = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    ratio = clipped / (frames * channels) if frames else 0.0
    return Decoded(
        mono=mono.astype(np.float32, copy=False),
        source_sample_rate=rate,
        source_channels=channels,
        clipping_ratio=ratio,
    )


def _decode_ffmpeg(data: bytes, source_format: str) -> Decoded:
    """Decode with ffmpeg straight to 24 kHz mono; its stderr says what the source was.

    run_ffmpeg() is not used because it throws stderr away on success, and the stream line
    there is the only place the source rate and channel count come from.
    """
    # SECURITY: the temporary file gets our own random name; the client's filename never
    # reaches a path or an ffmpeg argument.
    with tempfile.NamedTemporaryFile(suffix=".bin") as source:
        source.write(data)
        source.flush()
        command = [
            ffmpeg_executable(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
            "-protocol_whitelist", "file", "-f", _FFMPEG_DEMUXERS[source_format], "-i", source.name,
            "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-t", f"{limits.MAX_FILE_SECONDS + 1:g}",
            "-ac", "1", "-ar", str(limits.CANONICAL_SAMPLE_RATE), "-f", "f32le", "pipe:1",
        ]  # fmt: skip
        try:
            completed = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True,
                timeout=limits.FFMPEG_TIMEOUT_S, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise AudioCorrupt(
                "Decoding the file took too long; it may be damaged.",
                extra={"timeout_seconds": limits.FFMPEG_TIMEOUT_S},
            ) from exc
        except OSError as exc:  # ffmpeg missing or not executable: our fault, not the file's
            raise FfmpegError(f"could not start ffmpeg: {exc}") from exc
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode != 0:
        logger.info(
            "reference_decode.ffmpeg_failed",
            extra={"format": source_format, "stderr": stderr[-500:]},
        )
        if "matches no streams" in stderr:
            raise UnsupportedAudio("The file contains no audio track.")
        if "Decoder (codec" in stderr and "not found" in stderr:
            raise UnsupportedAudio("The audio codec in this file is not supported.")
        raise AudioCorrupt(_UNDECODABLE, extra={"format": source_format})

    input_info = stderr.split("Output #0", 1)[0]
    rate, channels = _stream_params(input_info)
    if rate:
        _check_stream(rate, channels or 1)
    claimed = _ffmpeg_duration(input_info)
    if claimed is not None and source_format != "mp3":  # ffmpeg estimates MP3 length from bitrate
        _check_claim(claimed, len(data), source_format)
    mono = np.frombuffer(completed.stdout, dtype="<f4").astype(np.float32)
    seconds = mono.size / limits.CANONICAL_SAMPLE_RATE
    if seconds > limits.MAX_FILE_SECONDS:
        raise _too_long_file()
    if not np.isfinite(mono).all():
        raise AudioCorrupt("The file contains invalid (NaN or infinite) samples.")
    if claimed is not None and source_format in _EXACT_LENGTH_FORMATS:
        _check_truncation(claimed, seconds)
    # NOTE: ffmpeg has already downmixed and resampled, so clipping is counted on its output.
    ratio = float(np.count_nonzero(np.abs(mono) >= limits.CLIP_LEVEL) / max(1, mono.size))
    return Decoded(
        mono=mono,
        source_sample_rate=rate or limits.CANONICAL_SAMPLE_RATE,
        source_channels=channels or 1,
        clipping_ratio=ratio,
    )


def _check_wav_header(data: bytes) -> None:
    """Walk the RIFF chunks to 'data' and compare its declared size with the bytes present.

    libsndfile silently shortens a WAV whose data chunk overruns the file, so this is the
    only place a lying or truncated header shows.
    """
    position, fmt = 12, None
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        body = position + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise AudioCorrupt("The WAV format header is incomplete.")
            fmt = struct.unpack_from("<HHIIHH", data, body)
        elif chunk_id == b"data":
            break
        position = body + size + (size & 1)
    else:
        raise AudioCorrupt("The WAV file has no audio data chunk; it may be truncated.")
    if fmt is None:
        raise AudioCorrupt("The WAV file has no format header before its audio data.")
    tag, channels, rate, byte_rate, _block_align, bits = fmt
    if channels == 0 or rate == 0:
        raise AudioCorrupt("The WAV header declares no channels or no sample rate.")
    _check_stream(rate, channels)
    exact = tag in _PCM_FORMAT_TAGS and bits in (8, 16, 24, 32, 64)
    bytes_per_second = rate * channels * bits // 8 if exact else byte_rate
    if bytes_per_second <= 0:
        raise AudioCorrupt("The WAV header declares a byte rate of zero.")

    present = len(data) - body
    if data[:4] == b"RF64" or size in _UNKNOWN_WAV_SIZES:
        held = present / bytes_per_second  # the real size lives elsewhere or nowhere
    else:
        claimed, held = size / bytes_per_second, min(size, present) / bytes_per_second
        _check_truncation(claimed, held)
    if held > limits.MAX_FILE_SECONDS:
        raise _too_long_file(held)


def _check_stream(rate: int, channels: int) -> None:
    if not limits.MIN_SOURCE_SAMPLE_RATE <= rate <= limits.MAX_SOURCE_SAMPLE_RATE:
        raise UnsupportedAudio(
            f"A sample rate of {rate} Hz is not supported; use 8 kHz to 384 kHz "
            "(16 kHz or more is best).",
            extra={"sample_rate": rate},
        )
    if not 1 <= channels <= limits.MAX_SOURCE_CHANNELS:
        raise UnsupportedAudio(
            f"{channels} channels are not supported; upload a mono or stereo recording.",
            extra={"channels": channels},
        )


def _check_claim(claimed_seconds: float, size: int, source_format: str) -> None:
    """Before decoding: a compressed header's length against what the file size can hold."""
    can_hold = size / limits.MIN_BYTES_PER_SECOND[source_format]
    if claimed_seconds > can_hold:
        raise AudioCorrupt(
            f"The header claims {claimed_seconds:.1f} s of audio but the file holds only "
            f"{_kilobytes(size)}, too little for that much {source_format.upper()}.",
            extra={"claimed_seconds": round(claimed_seconds, 2), "size": size},
        )
    if claimed_seconds > limits.MAX_FILE_SECONDS:
        raise _too_long_file(claimed_seconds)


def _check_truncation(claimed_seconds: float, held_seconds: float) -> None:
    missing = claimed_seconds - held_seconds
    slack = max(limits.TRUNCATION_SLACK_SECONDS, limits.TRUNCATION_SLACK_RATIO * claimed_seconds)
    if missing > slack:
        raise AudioCorrupt(
            f"The header claims {claimed_seconds:.1f} s of audio but the file holds only "
            f"{held_seconds:.1f} s; it may be truncated or damaged.",
            extra={
                "claimed_seconds": round(claimed_seconds, 2),
                "held_seconds": round(held_seconds, 2),
            },
        )
    if claimed_seconds > limits.MAX_FILE_SECONDS:
        raise _too_long_file(claimed_seconds)


def _too_long_file(seconds: float | None = None) -> AudioTooLong:
    cap = limits.MAX_FILE_SECONDS
    extra: dict[str, float] = {"limit_seconds": cap}
    if seconds is not None:
        extra["seconds"] = round(seconds, 1)
    length = f"{seconds:.0f} s" if seconds is not None else f"over {cap:.0f} s"
    return AudioTooLong(
        f"The recording lasts {length}; upload {limits.MIN_SPEECH_SECONDS:.0f} to "
        f"{limits.MAX_SPEECH_SECONDS:.0f} s of speech (files up to {cap:.0f} s are read).",
        extra=extra,
    )


def _kilobytes(size: int) -> str:
    return f"{size / 1000:.0f} KB" if size >= 1000 else f"{size} bytes"


# Stream lines are indented by exactly two spaces; metadata values (which the uploader
# controls) are printed deeper, so they cannot pose as one.
_STREAM_LINE = re.compile(r"^  Stream #0:\d+\S*: Audio: [^\n]*?, (\d+) Hz, ([^,\n]+)", re.MULTILINE)
_DURATION = re.compile(r"^  Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?),", re.MULTILINE)
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "quad": 4, "hexagonal": 6, "octagonal": 8, "downmix": 2}


def _stream_params(input_info: str) -> tuple[int, int]:
    """(sample rate, channels) of the first audio stream; 0 for what ffmpeg did not print."""
    match = _STREAM_LINE.search(input_info)
    if match is None:
        return 0, 0
    layout = match.group(2).strip().split("(", 1)[0]
    if layout in _LAYOUT_CHANNELS:
        channels = _LAYOUT_CHANNELS[layout]
    elif numbered := re.fullmatch(r"(\d+) channels", layout):
        channels = int(numbered.group(1))
    elif surround := re.fullmatch(r"(\d+)\.(\d+)", layout):
        channels = int(surround.group(1)) + int(surround.group(2))
    else:
        channels = 0
    return int(match.group(1)), channels


def _ffmpeg_duration(input_info: str) -> float | None:
    match = _DURATION.search(input_info)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
