"""Builders of real test uploads: speech-like signals in every container, and hostile files.

"Speech-like" is a harmonic buzz (a glottal source stand-in) whose pitch drifts a little,
under a 4 Hz syllable envelope with real gaps between syllables, over a faint noise floor,
with silence at both ends so trimming has something to do.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zipfile
import zlib

import numpy as np
import soundfile as sf

from synthesis.audio.ffmpeg import run_ffmpeg

SR = 24_000
ROOM_NOISE = 0.0003  # about -70 dBFS RMS


def voice(f0: np.ndarray, sample_rate: int = SR, *, seed: int = 0) -> np.ndarray:
    """Harmonics of a time-varying F0 (one value per sample) under a 4 Hz syllable envelope."""
    t = np.arange(f0.size) / sample_rate
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    rng = np.random.default_rng(seed)
    buzz = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 13))
    syllables = np.maximum(0.0, np.sin(2 * np.pi * 4.0 * t)) ** 0.7
    return buzz * syllables


def speech_like(
    seconds: float,
    *,
    f0: float = 140.0,
    sample_rate: int = SR,
    edge_silence: float = 0.5,
    amplitude: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """`seconds` of speech-like sound (pitch wandering +-2 semitones) with silent edges."""
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(seed)
    drift = 1.5 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6))
    drift += 0.6 * np.sin(2 * np.pi * 1.1 * t)
    signal = voice(f0 * 2 ** (drift / 12), sample_rate, seed=seed)
    signal = amplitude * signal / np.abs(signal).max()
    signal += rng.normal(0, ROOM_NOISE, n)
    edge = np.zeros(round(edge_silence * sample_rate))
    return np.concatenate([edge, signal, edge]).astype(np.float32)


def two_speakers(seconds: float = 12.0, *, turn_seconds: float = 2.0) -> np.ndarray:
    """Two voices at 110 Hz and 240 Hz taking turns every `turn_seconds`."""
    n = round(seconds * SR)
    t = np.arange(n) / SR
    turn = (t // turn_seconds).astype(int) % 2
    f0 = np.where(turn == 0, 110.0, 240.0) * 2 ** (0.5 * np.sin(2 * np.pi * 0.4 * t) / 12)
    signal = voice(f0)
    signal = 0.5 * signal / np.abs(signal).max()
    signal += np.random.default_rng(1).normal(0, ROOM_NOISE, n)
    return signal.astype(np.float32)


def with_white_noise(samples: np.ndarray, snr_db: float, *, seed: int = 2) -> np.ndarray:
    """Add white noise `snr_db` under the mean power of the non-silent part."""
    active = samples[np.abs(samples) > 1e-3]
    noise_power = np.mean(active.astype(np.float64) ** 2) / 10 ** (snr_db / 10)
    noise = np.random.default_rng(seed).normal(0, np.sqrt(noise_power), samples.size)
    return (samples + noise).astype(np.float32)


def wav_bytes(samples: np.ndarray, sample_rate: int = SR, *, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def encoded(samples: np.ndarray, container: str, sample_rate: int = SR) -> bytes:
    """`samples` as flac/ogg (libsndfile) or mp3/m4a (ffmpeg: LAME with an ID3 tag, AAC)."""
    if container in ("flac", "ogg"):
        buffer = io.BytesIO()
        subtype = "PCM_16" if container == "flac" else "VORBIS"
        sf.write(buffer, samples, sample_rate, format=container.upper(), subtype=subtype)
        return buffer.getvalue()
    raw = ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0"]
    pcm = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    if container == "mp3":
        lame = ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3", "pipe:1"]
        return run_ffmpeg([*raw, *lame], input_bytes=pcm)
    if container == "m4a":
        # MP4 needs a seekable output; the index (moov) lands after the audio, the hard case.
        with tempfile.NamedTemporaryFile(suffix=".m4a") as out:
            aac = ["-c:a", "aac", "-b:a", "64k", "-f", "ipod", out.name]
            run_ffmpeg(["-y", *raw, *aac], input_bytes=pcm)
            return out.read()
    raise ValueError(container)


def truncated_wav(*, claimed_seconds: float, held_seconds: float) -> bytes:
    """A WAV whose header describes `claimed_seconds`, cut off after `held_seconds`."""
    whole = wav_bytes(speech_like(claimed_seconds, edge_silence=0.0))
    data_start = whole.index(b"data") + 8
    return whole[: data_start + round(held_seconds * SR) * 2]


def wav_claiming(
    claimed_seconds: float, *, held_seconds: float = 1.0, sample_rate: int = 48_000
) -> bytes:
    """A stereo 16-bit WAV that holds `held_seconds` but whose header claims `claimed_seconds`."""
    mono = speech_like(held_seconds, sample_rate=sample_rate, edge_silence=0.0)
    samples = np.stack([mono, mono], axis=1)
    lying = bytearray(wav_bytes(samples, sample_rate))
    data_size = round(claimed_seconds * sample_rate) * 2 * 2
    position = lying.index(b"data")
    lying[position + 4 : position + 8] = struct.pack("<I", data_size)
    lying[4:8] = struct.pack("<I", position + 8 + data_size - 8)
    return bytes(lying)


def silence_wav(seconds: float) -> bytes:
    return wav_bytes(np.zeros(round(seconds * SR), dtype=np.float32))


def long_quiet_file_wav(seconds: float = 130.0) -> bytes:
    """A real, honest WAV longer than any file is read: 8 kHz 8-bit mono keeps it near 1 MB."""
    return wav_bytes(np.full(round(seconds * 8000), 0.01, dtype=np.float32), 8000, subtype="PCM_U8")


def html_page() -> bytes:
    return (
        b"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in</title>"
        b"</head><body><form action=\"/login\"><input name=\"user\"></form></body></html>\n"
    )


def zip_archive() -> bytes:
    """A ZIP that holds a perfectly good WAV: archives are refused, not unpacked."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("voice.wav", wav_bytes(speech_like(4.0)))
    return buffer.getvalue()


def png_image(width: int = 4, height: int = 4) -> bytes:
    """A valid grey PNG built by hand (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + checksum

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def random_bytes(size: int = 64_000, *, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def garbage_after_magic(magic: bytes, size: int = 20_000) -> bytes:
    """A container's magic bytes followed by noise: passes sniffing, cannot decode."""
    return magic + random_bytes(size - len(magic), seed=11)
