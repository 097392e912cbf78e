"""process() and encode() for audio too long to hold in memory: a worker's memory stays
bounded however long a job's audio is.

    with LongRender(options, engine_rate, apply_speed=True) as long:
        for chunk in chunks:              # mono float32 at the engine's rate
            long.add(chunk)               # to a scratch file on disk
        path, rate, seconds = long.finish(folder)   # the encoded file

The engine's chunks go to a scratch file as they come (float32, with the chunk boundaries
and the peak). finish() then runs the whole-file pipeline of synthesis.audio.process over
that file, one chunk (about a sentence) at a time, in three passes:

1. trim: the loud bounds (relative to the peak) are found by scanning the file;
2. tempo and pitch per chunk (chunk edges sit in pauses, as in a stream), a stateful
   resampler to the output rate, to a second scratch file; on the way, BS.1770 loudness
   (K-weighting with its filter state carried from chunk to chunk, 400 ms blocks every
   100 ms, both gates: pyloudnorm's measure of the whole file) and the 4x-oversampled true
   peak of the whole file;
3. the loudness gain and volume, the true-peak ceiling (the limiter runs on the pieces that
   pass it, as in a stream), the channels, and the encoder, writing the output file:
   libsndfile for WAV, FLAC and PCM, ffmpeg (reading a pipe, writing the file) for the rest.

Memory is a chunk or a read block (a few seconds) plus per-100-ms loudness sums (a few hundred
KB for an hour); disk is about 4 bytes a sample at the engine rate and at the output rate.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import pyloudnorm
import soundfile as sf
import soxr
from scipy.signal import lfilter

from synthesis.audio.encode import SOUNDFILE_WAV_SUBTYPES, ffmpeg_codec_args, raw_input_args
from synthesis.audio.ffmpeg import FfmpegError, ffmpeg_executable
from synthesis.audio.options import AudioOptions
from synthesis.audio.process import (
    SILENCE_FLOOR_DBFS,
    SILENCE_THRESHOLD_DB,
    TRIM_MARGIN_SECONDS,
    TRUE_PEAK_OVERSAMPLING,
    apply_gain_db,
    as_mono,
    change_tempo_and_pitch,
    db_to_gain,
    gain_to_db,
    limit_true_peak,
    to_channels,
    true_peak_dbtp,
)

# Samples read from a scratch file at a time where no chunk boundary guides the reading.
READ_BLOCK = 1 << 18
_SOUNDFILE_FORMATS = {"wav": "WAV", "flac": "FLAC", "pcm": "RAW"}


class LoudnessMeter:
    """BS.1770-4 integrated loudness of a mono signal fed in pieces: what pyloudnorm's Meter
    measures on the whole signal (same K-weighting filters, 400 ms blocks with 75 % overlap,
    absolute and relative gates), keeping only a sum of squares per 100 ms."""

    BLOCK_HOPS = 4  # a 400 ms block is four 100 ms hops

    def __init__(self, sample_rate: int) -> None:
        meter = pyloudnorm.Meter(sample_rate)
        self._stages = [
            [stage.passband_gain, stage.b, stage.a, np.zeros(max(len(stage.a), len(stage.b)) - 1)]
            for stage in meter._filters.values()  # noqa: SLF001  the K-weighting coefficients
        ]
        self._hop = round(0.1 * sample_rate)
        self._hop_sums: list[float] = []
        self._partial = 0.0
        self._partial_count = 0

    def feed(self, samples: np.ndarray) -> None:
        weighted = np.asarray(samples, dtype=np.float64)
        for stage in self._stages:
            gain, b, a, state = stage
            weighted, stage[3] = lfilter(b, a, weighted, zi=state)
            weighted = gain * weighted
        squares = np.square(weighted)
        position = 0
        while position < squares.size:
            take = min(self._hop - self._partial_count, squares.size - position)
            self._partial += float(squares[position : position + take].sum())
            self._partial_count += take
            position += take
            if self._partial_count == self._hop:
                self._hop_sums.append(self._partial)
                self._partial, self._partial_count = 0.0, 0

    def integrated(self) -> float:
        """Integrated loudness in LUFS; -inf for silence or less than one block."""
        hops = np.asarray(self._hop_sums + ([self._partial] if self._partial_count else []))
        blocks = hops.size - self.BLOCK_HOPS + 1
        if blocks <= 0:
            return -math.inf
        sums = np.convolve(hops, np.ones(self.BLOCK_HOPS), mode="valid")[:blocks]
        z = sums / (self.BLOCK_HOPS * self._hop)
        with np.errstate(divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            loudness = -0.691 + 10.0 * np.log10(z)
            above_absolute = loudness >= -70.0
            if not above_absolute.any():
                return -math.inf
            relative = -0.691 + 10.0 * np.log10(z[above_absolute].mean()) - 10.0
            gated = (loudness > relative) & (loudness > -70.0)
            if not gated.any():
                return -math.inf
            value = float(-0.691 + 10.0 * np.log10(z[gated].mean()))
        return value if math.isfinite(value) else -math.inf


class TruePeakMeter:
    """The true peak (dBTP) of a signal fed in pieces: 4x oversampling with one stateful
    resampler, as true_peak_dbtp() does on the whole signal."""

    def __init__(self, sample_rate: int) -> None:
        self._resampler = soxr.ResampleStream(
            sample_rate, sample_rate * TRUE_PEAK_OVERSAMPLING, 1, dtype="float32", quality="HQ")
        self._peak = 0.0

    def feed(self, samples: np.ndarray, *, last: bool = False) -> None:
        oversampled = self._resampler.resample_chunk(np.asarray(samples, dtype=np.float32), last=last)
        if oversampled.size:
            self._peak = max(self._peak, float(np.abs(oversampled).max()))

    def dbtp(self) -> float:
        return gain_to_db(self._peak)


class _Scratch:
    """float32 mono samples on disk with the boundaries of the pieces that were written."""

    def __init__(self, folder: str | None) -> None:
        handle, name = tempfile.mkstemp(prefix="parla-long-", suffix=".f32", dir=folder)
        self.path = Path(name)
        self._file = os.fdopen(handle, "w+b")
        self.bounds: list[int] = [0]  # sample offsets where each piece starts (and the end)

    @property
    def size(self) -> int:
        return self.bounds[-1]

    def write(self, samples: np.ndarray) -> None:
        if samples.size:
            self._file.write(np.ascontiguousarray(samples, dtype="<f4").tobytes())
            self.bounds.append(self.bounds[-1] + samples.size)

    def read(self, start: int, stop: int) -> np.ndarray:
        self._file.flush()
        self._file.seek(start * 4)
        return np.frombuffer(self._file.read((stop - start) * 4), dtype="<f4").astype(np.float32)

    def pieces(self, start: int = 0, stop: int | None = None):
        """The written pieces within [start, stop), cut at those bounds."""
        stop = self.size if stop is None else stop
        for first, end in zip(self.bounds, self.bounds[1:], strict=False):
            first, end = max(first, start), min(end, stop)
            if first < end:
                yield self.read(first, end)

    def close(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class LongRender:
    """See the module docstring. A context manager: scratch files go when it closes."""

    def __init__(self, options: AudioOptions, sample_rate: int, *, apply_speed: bool = True,
                 folder: str | None = None) -> None:
        self.options = options
        self.sample_rate = sample_rate
        self.output_rate = options.output_sample_rate(sample_rate)
        self._speed = options.speed if apply_speed else 1.0
        self._folder = folder
        self._raw = _Scratch(folder)
        self._processed: _Scratch | None = None
        self._peak = 0.0

    @property
    def seconds(self) -> float:
        """Engine audio written so far."""
        return self._raw.size / self.sample_rate

    def add(self, samples: np.ndarray) -> None:
        mono = as_mono(samples)
        if mono.size:
            self._peak = max(self._peak, float(np.abs(mono).max()))
            self._raw.write(mono)

    def finish(self, target: Path) -> tuple[int, float]:
        """Write the encoded file to `target`; return its sample rate and its seconds."""
        start, stop = self._trim_bounds()
        loudness, peak_dbtp = self._shape(start, stop)
        gain_db = self.options.volume_db
        if self.options.loudness_lufs is not None and loudness != -math.inf:
            gain_db += self.options.loudness_lufs - loudness
        frames = self._encode(target, gain_db=gain_db, limit=peak_dbtp + gain_db > self.options.true_peak_dbtp)
        return self.output_rate, frames / self.output_rate

    def _trim_bounds(self) -> tuple[int, int]:
        """process()'s trim_silence over the file: the first and last sample within
        SILENCE_THRESHOLD_DB of the peak, with the margin; all of it for a silent signal."""
        size = self._raw.size
        if not self.options.trim_silence or self._peak < db_to_gain(SILENCE_FLOOR_DBFS):
            return 0, size
        threshold = self._peak * db_to_gain(SILENCE_THRESHOLD_DB)
        first = last = None
        for position in range(0, size, READ_BLOCK):
            loud = np.flatnonzero(np.abs(self._raw.read(position, min(size, position + READ_BLOCK))) >= threshold)
            if loud.size:
                first = position + int(loud[0]) if first is None else first
                last = position + int(loud[-1])
        margin = round(TRIM_MARGIN_SECONDS * self.sample_rate)
        return max(0, first - margin), min(size, last + 1 + margin)

    def _shape(self, start: int, stop: int) -> tuple[float, float]:
        """Tempo, pitch and resampling to the processed scratch file; its loudness and true peak."""
        self._processed = _Scratch(self._folder)
        resampler = (soxr.ResampleStream(self.sample_rate, self.output_rate, 1, dtype="float32", quality="HQ")
                     if self.output_rate != self.sample_rate else None)
        loudness = LoudnessMeter(self.output_rate)
        peak = TruePeakMeter(self.output_rate)
        for piece in self._raw.pieces(start, stop):
            self._store(change_tempo_and_pitch(piece, self.sample_rate, speed=self._speed,
                                               pitch_semitones=self.options.pitch_semitones),
                        resampler, loudness, peak)
        if resampler is not None:
            self._store(np.zeros(0, np.float32), resampler, loudness, peak, last=True)
        peak.feed(np.zeros(0, np.float32), last=True)
        return loudness.integrated(), peak.dbtp()

    def _store(self, mono, resampler, loudness: LoudnessMeter, peak: TruePeakMeter, *, last: bool = False) -> None:
        if resampler is not None:
            mono = np.asarray(resampler.resample_chunk(mono, last=last), dtype=np.float32)
        if mono.size:
            loudness.feed(mono)
            peak.feed(mono)
            self._processed.write(mono)

    def _encode(self, target: Path, *, gain_db: float, limit: bool) -> int:
        """Gain, the true-peak ceiling per piece, channels and the encoder; the frames written."""
        options, rate = self.options, self.output_rate
        frames = 0
        with _Encoder(options, rate, target) as encoder:
            for piece in self._processed.pieces():
                piece = apply_gain_db(piece, gain_db)
                if limit and true_peak_dbtp(piece, rate) > options.true_peak_dbtp:
                    piece = limit_true_peak(piece, rate, options.true_peak_dbtp)
                encoder.write(to_channels(piece, options.channels))
                frames += piece.size
            if frames == 0 and options.format not in ("wav", "pcm"):
                encoder.write(np.zeros((1, options.channels) if options.channels > 1 else 1, np.float32))
                frames = 1
        return frames

    def close(self) -> None:
        self._raw.close()
        if self._processed is not None:
            self._processed.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class _Encoder:
    """Frames in, an encoded file out, a block at a time: libsndfile for WAV, FLAC and raw
    PCM; ffmpeg reading a pipe and writing the file (it seeks back to finish MP3 and M4A
    headers) for MP3, Opus, Ogg Vorbis and M4A."""

    def __init__(self, options: AudioOptions, sample_rate: int, target: Path) -> None:
        self._file: sf.SoundFile | None = None
        self._process: subprocess.Popen | None = None
        if options.format in _SOUNDFILE_FORMATS:
            subtype = SOUNDFILE_WAV_SUBTYPES[options.wav_subtype] if options.format == "wav" else "PCM_16"
            extra = {"endian": "LITTLE"} if options.format == "pcm" else {}
            self._file = sf.SoundFile(target, "w", samplerate=sample_rate, channels=options.channels,
                                      format=_SOUNDFILE_FORMATS[options.format], subtype=subtype, **extra)
            return
        self._stderr = tempfile.TemporaryFile()
        args = ["-hide_banner", "-nostats", "-loglevel", "error", "-y",
                *raw_input_args(sample_rate, options.channels),
                *ffmpeg_codec_args(options, sample_rate, streaming=False), str(target)]
        self._process = subprocess.Popen([ffmpeg_executable(), *args], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=self._stderr)

    def write(self, frames: np.ndarray) -> None:
        if self._file is not None:
            self._file.write(frames)
            return
        try:
            self._process.stdin.write(np.ascontiguousarray(frames, dtype="<f4").tobytes())
        except BrokenPipeError:
            self._failed("ffmpeg stopped reading")

    def _failed(self, message: str):
        self._process.kill()
        self._process.wait()
        self._stderr.seek(0)
        raise FfmpegError(message, returncode=self._process.returncode,
                          stderr=self._stderr.read().decode(errors="replace"))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._file is not None:
            self._file.close()
            return
        try:
            if exc_type is not None:
                self._process.kill()
                self._process.wait()
                return
            self._process.stdin.close()
            if self._process.wait() != 0:
                self._failed(f"ffmpeg failed with exit code {self._process.returncode}")
        finally:
            self._stderr.close()
