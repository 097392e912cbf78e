"""A job's files: its stored audio, a stream's stored copy, conditioning on this host."""

import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.core.files.storage import default_storage

from synthesis.audio import AudioOptions
from synthesis.cache import audio_content
from synthesis.models import SynthesisJob

logger = logging.getLogger(__name__)


@contextmanager
def local_file(storage_path: str):
    """A path on this host for a stored file: itself on local storage, else a temporary copy."""
    if not storage_path:
        yield None
        return
    try:
        yield Path(default_storage.path(storage_path))
        return
    except NotImplementedError:
        pass  # Remote storage (S3): copy it down for the engine.
    suffix = Path(storage_path).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as handle:
        with default_storage.open(storage_path, "rb") as stored:
            handle.write(stored.read())
    try:
        yield Path(handle.name)
    finally:
        os.unlink(handle.name)


def _audio_key(job: SynthesisJob, extension: str) -> str:
    return f"tenants/{job.tenant_id}/jobs/{job.pk}.{extension}"


def store_audio(job: SynthesisJob, data: bytes | Path, extension: str) -> str:
    key = _audio_key(job, extension)
    # Deterministic name: a retried job overwrites its own file instead of adding one.
    if default_storage.exists(key):
        default_storage.delete(key)
    content = audio_content(data)
    try:
        return default_storage.save(key, content)
    finally:
        content.close()


def delete_file(path: str) -> None:
    try:
        default_storage.delete(path)
    except OSError:
        logger.warning("synthesis_job_delete.file_failed", extra={"path": path})


def wav_finalize(data: bytes) -> bytes:
    """Fill in the sizes of a WAV written with a streaming header (sizes unknown up front)."""
    head = _WAV_HEAD_BYTES
    return _wav_sizes(data[:head], len(data)) + data[head:]


# A streamed WAV's chunk headers, up to the start of its samples, fit in this many bytes.
_WAV_HEAD_BYTES = 4096


def _wav_sizes(head: bytes, total: int) -> bytes:
    """`head`, the first bytes of a WAV of `total` bytes, with its RIFF and data sizes set."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return head
    out = bytearray(head)
    out[4:8] = (total - 8).to_bytes(4, "little")
    position = 12
    while position + 8 <= len(out):
        chunk_id, size = bytes(out[position : position + 4]), int.from_bytes(out[position + 4 : position + 8], "little")
        if chunk_id == b"data":
            out[position + 4 : position + 8] = (total - position - 8).to_bytes(4, "little")
            break
        position += 8 + size + (size & 1)
    return bytes(out)


# A stream's stored copy is kept in memory up to this size, and on disk past it.
STREAM_COPY_MEMORY_BYTES = 16 * 1024 * 1024


class StreamCopy:
    """The stored copy of a stream, built as its pieces go out: bytes while small, a
    temporary file (which the caller deletes once stored) when long."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0
        self._file = None

    def add(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._file is None and self._size > STREAM_COPY_MEMORY_BYTES:
            self._file = tempfile.NamedTemporaryFile(prefix="parla-stream-", delete=False)  # noqa: SIM115
            self._file.writelines(self._pieces)
            self._pieces.clear()
        if self._file is not None:
            self._file.write(piece)
        else:
            self._pieces.append(piece)

    def result(self, *, wav: bool) -> bytes | Path:
        if self._file is None:
            data = b"".join(self._pieces)
            return wav_finalize(data) if wav else data
        if wav:
            self._file.seek(0)
            head = self._file.read(_WAV_HEAD_BYTES)
            self._file.seek(0)
            self._file.write(_wav_sizes(head, self._size))
        self._file.close()
        return Path(self._file.name)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            Path(self._file.name).unlink(missing_ok=True)


def audio_seconds_of(data: bytes, audio: AudioOptions, sample_rate: int) -> float:
    import io

    import soundfile as sf

    if audio.format == "pcm":
        return len(data) / (2 * audio.channels * sample_rate) if sample_rate else 0.0
    try:
        return float(sf.info(io.BytesIO(data)).duration)
    except Exception:  # noqa: BLE001  mp3/opus headers soundfile cannot read: fall back to ffprobe-free estimate
        from pydub import AudioSegment

        return len(AudioSegment.from_file(io.BytesIO(data))) / 1000
