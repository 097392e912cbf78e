"""Job events between the worker running a job and the web process waiting for it.

- Job events: a worker appends events to a per-job channel ("meta" when audio starts,
  "chunk" for each piece of a stream, "done" or "error" at the end); the web process that
  waits for the job (a synchronous or streaming request) reads them in order. A channel is a
  Redis list read with BLPOP, so an event published before the reader arrives is not lost,
  and it expires on its own when nobody reads it.
- Stream readers: the web process relaying a stream marks itself as its reader while it
  reads (a key with a TTL, refreshed with every read, removed when the client goes). A worker
  publishes a stream's chunks only while it has a reader, and never runs more than
  STREAM_BACKLOG_EVENTS ahead of it: a reader that stops reading stops the worker, so no
  channel grows without bound and nobody renders audio for a client that left.
- Cancel marks: the web tier marks a cancelled job, and its worker asks between sentences.

In embedded mode (no Redis) the worker runs inside the web process, so all of it lives in memory.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from config.runtime.connection import key_prefix, runtime_backend

logger = logging.getLogger(__name__)

# A channel nobody reads is dropped after this long.
CHANNEL_TTL_SECONDS = 15 * 60
# Stream chunks a worker may publish ahead of its reader before it waits for the reader.
STREAM_BACKLOG_EVENTS = 32
STREAM_BACKLOG_POLL_SECONDS = 0.05


def stream_reader_ttl_seconds() -> float:
    """A reader that has not read for this long is gone (longer than a relay ever waits)."""
    return max(30.0, settings.PARLA_STREAM_IDLE_SECONDS + 10.0)


# Push an event to a stream's channel only while the stream has a reader: -1 without one,
# else the channel's length. One script, so the check and the push cannot be split.
_PUBLISH_IF_READ = """
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local length = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return length
"""


@dataclass(frozen=True)
class JobEvent:
    kind: str  # meta, chunk, done, error
    data: bytes = b""
    info: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        header = json.dumps({"kind": self.kind, "info": self.info}).encode()
        return len(header).to_bytes(4, "big") + header + self.data

    @classmethod
    def decode(cls, raw: bytes) -> JobEvent:
        size = int.from_bytes(raw[:4], "big")
        header = json.loads(raw[4 : 4 + size])
        return cls(kind=header["kind"], info=header["info"], data=raw[4 + size :])


class _RedisEvents:
    def __init__(self, client) -> None:
        self._client = client
        self._prefix = key_prefix()
        self._publish_if_read = self._client.register_script(_PUBLISH_IF_READ)

    def _channel(self, job_id: int) -> str:
        return f"{self._prefix}:job:{job_id}:events"

    def _reader(self, job_id: int) -> str:
        return f"{self._prefix}:job:{job_id}:reader"

    def cancel_mark(self, job_id: int) -> None:
        self._client.set(f"{self._prefix}:job:{job_id}:cancel", "1", ex=CHANNEL_TTL_SECONDS)

    def cancel_marked(self, job_id: int) -> bool:
        return bool(self._client.exists(f"{self._prefix}:job:{job_id}:cancel"))

    def reader_mark(self, job_id: int) -> None:
        self._client.set(self._reader(job_id), "1", px=int(stream_reader_ttl_seconds() * 1000))

    def reader_gone(self, job_id: int) -> None:
        self._client.delete(self._reader(job_id))

    def publish_if_read(self, job_id: int, event: JobEvent) -> int:
        return int(self._publish_if_read(keys=[self._channel(job_id), self._reader(job_id)],
                          args=[event.encode(), CHANNEL_TTL_SECONDS]))

    def backlog(self, job_id: int) -> tuple[int, bool]:
        pipe = self._client.pipeline(transaction=False)
        pipe.llen(self._channel(job_id))
        pipe.exists(self._reader(job_id))
        length, reader = pipe.execute()
        return int(length), bool(reader)

    def next_event_reading(self, job_id: int, timeout: float) -> JobEvent | None:
        """next_event() that first marks the caller as the stream's reader (one round trip)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.set(self._reader(job_id), "1", px=int(stream_reader_ttl_seconds() * 1000))
        pipe.blpop([self._channel(job_id)], timeout=max(timeout, 0.01))
        popped = pipe.execute()[1]
        return None if popped is None else JobEvent.decode(popped[1])

    def publish(self, job_id: int, event: JobEvent) -> None:
        key = self._channel(job_id)
        pipe = self._client.pipeline()
        pipe.rpush(key, event.encode())
        pipe.expire(key, CHANNEL_TTL_SECONDS)
        pipe.execute()

    def next_event(self, job_id: int, timeout: float) -> JobEvent | None:
        # BLPOP takes whole or fractional seconds; 0 would block forever.
        popped = self._client.blpop([self._channel(job_id)], timeout=max(timeout, 0.01))
        return None if popped is None else JobEvent.decode(popped[1])

    def discard(self, job_id: int) -> None:
        self._client.delete(self._channel(job_id), self._reader(job_id))


class _MemoryEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[int, tuple[float, queue.Queue[JobEvent]]] = {}
        self._readers: dict[int, float] = {}  # job id -> monotonic time the reader expires
        self._cancelled: dict[int, float] = {}  # job id -> monotonic time the mark expires

    def _queue(self, job_id: int) -> queue.Queue[JobEvent]:
        with self._lock:
            now = time.monotonic()
            for stale in [k for k, (t, _) in self._channels.items() if now - t > CHANNEL_TTL_SECONDS]:
                del self._channels[stale]
            if job_id not in self._channels:
                self._channels[job_id] = (now, queue.Queue())
            return self._channels[job_id][1]

    def publish(self, job_id: int, event: JobEvent) -> None:
        self._queue(job_id).put(event)

    def next_event(self, job_id: int, timeout: float) -> JobEvent | None:
        try:
            return self._queue(job_id).get(timeout=max(timeout, 0.01))
        except queue.Empty:
            return None

    def discard(self, job_id: int) -> None:
        with self._lock:
            self._channels.pop(job_id, None)
            self._readers.pop(job_id, None)

    def cancel_mark(self, job_id: int) -> None:
        with self._lock:
            now = time.monotonic()
            for stale in [k for k, t in self._cancelled.items() if t < now]:
                del self._cancelled[stale]
            self._cancelled[job_id] = now + CHANNEL_TTL_SECONDS

    def cancel_marked(self, job_id: int) -> bool:
        with self._lock:
            return self._cancelled.get(job_id, 0.0) > time.monotonic()

    def reader_mark(self, job_id: int) -> None:
        with self._lock:
            self._readers[job_id] = time.monotonic() + stream_reader_ttl_seconds()

    def reader_gone(self, job_id: int) -> None:
        with self._lock:
            self._readers.pop(job_id, None)

    def _has_reader(self, job_id: int) -> bool:
        with self._lock:
            return self._readers.get(job_id, 0.0) > time.monotonic()

    def publish_if_read(self, job_id: int, event: JobEvent) -> int:
        if not self._has_reader(job_id):
            return -1
        channel = self._queue(job_id)
        channel.put(event)
        return channel.qsize()

    def backlog(self, job_id: int) -> tuple[int, bool]:
        return self._queue(job_id).qsize(), self._has_reader(job_id)

    def next_event_reading(self, job_id: int, timeout: float) -> JobEvent | None:
        self.reader_mark(job_id)
        return self.next_event(job_id, timeout)


def _events() -> _RedisEvents | _MemoryEvents:
    return runtime_backend("events", redis_backend=_RedisEvents, memory_backend=_MemoryEvents)


def job_event_publish(*, job_id: int, event: JobEvent) -> None:
    """Best effort: a waiting request falls back to reading the job row (Redis may be down)."""
    try:
        _events().publish(job_id, event)
    except Exception:  # noqa: BLE001  the job's outcome is in the database either way
        logger.warning("job_event_publish.failed", extra={"job_id": job_id, "kind": event.kind}, exc_info=True)


def job_event_next(*, job_id: int, timeout: float) -> JobEvent | None:
    """The job's next event, waiting up to `timeout` seconds; None if nothing came."""
    return _events().next_event(job_id, timeout)


def job_events_discard(*, job_id: int) -> None:
    _events().discard(job_id)


def job_cancel_mark(*, job_id: int) -> None:
    """Tell the worker running `job_id` that it was cancelled (it asks between sentences).
    Best effort: the job row says so too, and the worker's settlement reads that."""
    try:
        _events().cancel_mark(job_id)
    except Exception:  # noqa: BLE001  the job still ends cancelled, only later
        logger.warning("job_cancel_mark.failed", extra={"job_id": job_id}, exc_info=True)


def job_cancel_marked(*, job_id: int) -> bool:
    try:
        return _events().cancel_marked(job_id)
    except Exception:  # noqa: BLE001  see job_cancel_mark
        return False


def stream_reader_mark(*, job_id: int) -> None:
    """The stream of `job_id` has a reader (its relay, about to read); see the module docstring."""
    _events().reader_mark(job_id)


def stream_reader_gone(*, job_id: int) -> None:
    """The stream's reader left: its worker stops at the next chunk. Best effort."""
    try:
        _events().reader_gone(job_id)
    except Exception:  # noqa: BLE001  the reader key expires on its own
        logger.warning("stream_reader_gone.failed", extra={"job_id": job_id}, exc_info=True)


def stream_event_next(*, job_id: int, timeout: float) -> JobEvent | None:
    """job_event_next() for a stream's relay: it also renews the relay's mark as reader."""
    return _events().next_event_reading(job_id, timeout)


def stream_chunk_publish(*, job_id: int, data: bytes, wait_seconds: float) -> bool:
    """Publish a stream's chunk if it still has a reader, never more than
    STREAM_BACKLOG_EVENTS ahead of it: past that, wait (up to `wait_seconds`) for the reader
    to catch up. False: the reader is gone or stopped reading, so the stream should stop.
    """
    events = _events()
    length = events.publish_if_read(job_id, JobEvent("chunk", data=data))
    if length < 0:
        return False
    deadline = time.monotonic() + wait_seconds
    while length > STREAM_BACKLOG_EVENTS:
        time.sleep(STREAM_BACKLOG_POLL_SECONDS)
        length, reader = events.backlog(job_id)
        if not reader or time.monotonic() > deadline:
            return False
    return True
