"""Find and run ffmpeg: one-shot transcodes and long-running streaming encoders.

ffmpeg covers what libsndfile cannot do with exact control: MP3/Opus/Vorbis at a chosen
bitrate, AAC in an M4A container, and incremental encoding from a pipe. A system `ffmpeg`
on PATH wins (operators may want their distribution's build); otherwise the binary that
imageio-ffmpeg ships is used, so a plain `pip install` is enough.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Sequence
from typing import cast

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0
_STDERR_TAIL_CHARS = 2000
# Always prepended: no banner, no progress lines, no interactive keys on stdin, only errors.
_COMMON_ARGS = ("-hide_banner", "-nostats", "-loglevel", "error")


class FfmpegError(RuntimeError):
    """ffmpeg is missing, failed, or timed out. The message ends with the tail of its stderr."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "") -> None:
        tail = stderr.strip()[-_STDERR_TAIL_CHARS:]
        super().__init__(f"{message}: {tail}" if tail else message)
        self.returncode = returncode
        self.stderr = tail


@functools.cache
def ffmpeg_executable() -> str:
    """Path of the ffmpeg binary, looked up once per process."""
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - imageio-ffmpeg is a hard dependency
        raise FfmpegError("ffmpeg not found on PATH and imageio-ffmpeg is not installed") from exc
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:  # pragma: no cover - wheel without a binary for this platform
        raise FfmpegError(f"ffmpeg not found on PATH and imageio-ffmpeg has none: {exc}") from exc


def _command(args: Sequence[str]) -> list[str]:
    return [ffmpeg_executable(), *_COMMON_ARGS, *args]


def run_ffmpeg(
    args: Sequence[str], *, input_bytes: bytes | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> bytes:
    """Run ffmpeg with `args` (after the common flags) and return what it wrote to stdout.

    `input_bytes` is fed on stdin (use `-i pipe:0`). Raises FfmpegError on a non-zero exit
    or when it runs past `timeout_s` (the process is killed first).
    """
    command = _command(args)
    try:
        completed = subprocess.run(
            command,
            input=input_bytes,
            stdin=None if input_bytes is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = (exc.stderr or b"").decode(errors="replace")
        raise FfmpegError(f"ffmpeg timed out after {timeout_s:g} s", stderr=stderr) from exc
    except OSError as exc:
        raise FfmpegError(f"could not start ffmpeg ({command[0]}): {exc}") from exc
    if completed.returncode != 0:
        raise FfmpegError(
            f"ffmpeg exited with status {completed.returncode}",
            returncode=completed.returncode,
            stderr=completed.stderr.decode(errors="replace"),
        )
    return completed.stdout


def ffmpeg_decode(data: bytes, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[np.ndarray, int]:
    """Decode any container/codec ffmpeg reads into float32 samples shaped (frames, channels).

    The input goes through a temporary file because some containers (MP4 with the index at
    the end) cannot be demuxed from a pipe.
    """
    with tempfile.NamedTemporaryFile(suffix=".bin") as source:
        source.write(data)
        source.flush()
        wav = run_ffmpeg(
            ["-i", source.name, "-vn", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"],
            timeout_s=timeout_s,
        )
    # NOTE: ffmpeg cannot seek back on a pipe, so the WAV sizes are placeholders; libsndfile
    # then reads up to the end of the data, which is what we want.
    samples, sample_rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return samples, int(sample_rate)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()


def _drain(stdout: io.BufferedReader, output: list[bytes], lock: threading.Lock) -> None:
    # A plain function, not a method: a thread holding `self` would keep a dropped
    # FfmpegPipe alive, and its finalizer (which kills ffmpeg) would never run.
    while True:
        # read1() returns as soon as some bytes are there instead of waiting for 64 KiB.
        data = stdout.read1(65536)
        if not data:
            return
        with lock:
            output.append(data)


class FfmpegPipe:
    """A long-running ffmpeg that reads raw input on stdin and writes a stream on stdout.

    A daemon thread drains stdout as it comes, so `write()` never deadlocks against a full
    stdout pipe and can hand back whatever ffmpeg has produced so far. stderr goes to a
    temporary file (not a pipe nobody reads, which would block ffmpeg once it fills up).
    The process is killed if the object is dropped without `close()` (client went away).
    """

    def __init__(self, args: Sequence[str], *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._timeout_s = timeout_s
        # Lives as long as the process; closed in close()/abort().
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115
        command = _command(args)
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr_file,
            )
        except OSError as exc:
            self._stderr_file.close()
            raise FfmpegError(f"could not start ffmpeg ({command[0]}): {exc}") from exc
        self._output: list[bytes] = []
        self._lock = threading.Lock()
        self._closed = False
        # Popen's default buffering makes stdout a BufferedReader, which has read1().
        stdout = cast(io.BufferedReader, self._process.stdout)
        self._reader = threading.Thread(
            target=_drain,
            args=(stdout, self._output, self._lock),
            name="ffmpeg-stdout",
            daemon=True,
        )
        self._reader.start()
        self._finalizer = weakref.finalize(self, _kill, self._process)

    def _stderr_text(self) -> str:
        self._stderr_file.seek(0, os.SEEK_END)
        size = self._stderr_file.tell()
        self._stderr_file.seek(max(0, size - 4 * _STDERR_TAIL_CHARS))
        return self._stderr_file.read().decode(errors="replace")

    def take(self) -> bytes:
        """Everything ffmpeg wrote since the last call (possibly nothing)."""
        with self._lock:
            data = b"".join(self._output)
            self._output.clear()
        return data

    def write(self, data: bytes) -> bytes:
        """Send `data` to ffmpeg's stdin; return the output produced so far."""
        if self._closed:
            raise FfmpegError("ffmpeg stream is already closed")
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            returncode, stderr = self._process.poll(), self._stderr_text()
            self.abort()
            raise FfmpegError(
                "ffmpeg stopped reading its input", returncode=returncode, stderr=stderr
            ) from exc
        return self.take()

    def close(self) -> bytes:
        """End the input, wait for ffmpeg to flush and exit, and return the rest of the output."""
        if self._closed:
            return self.take()
        self._closed = True
        stdin = self._process.stdin
        assert stdin is not None
        # BrokenPipeError: ffmpeg already exited; its status below says why.
        with contextlib.suppress(BrokenPipeError):
            stdin.close()
        try:
            returncode = self._process.wait(timeout=self._timeout_s)
        except subprocess.TimeoutExpired as exc:
            stderr = self._stderr_text()
            self.abort()
            raise FfmpegError(
                f"ffmpeg did not finish within {self._timeout_s:g} s", stderr=stderr
            ) from exc
        self._reader.join(timeout=self._timeout_s)
        stderr = self._stderr_text()
        self._stderr_file.close()
        self._finalizer.detach()
        if returncode != 0:
            raise FfmpegError(
                f"ffmpeg exited with status {returncode}", returncode=returncode, stderr=stderr
            )
        return self.take()

    def abort(self) -> None:
        """Kill ffmpeg now (the consumer went away); the output is discarded."""
        self._closed = True
        self._finalizer()
        self._reader.join(timeout=5)
        if not self._stderr_file.closed:
            self._stderr_file.close()

    @property
    def running(self) -> bool:
        return self._process.poll() is None
