"""Short-lived signals between workers and web processes: job events and worker presence.

- Job events: a worker appends events to a per-job channel ("meta" when audio starts,
  "chunk" for each piece of a stream, "done" or "error" at the end); the web process that
  waits for the job (a synchronous or streaming request) reads them in order. A channel is a
  Redis list read with BLPOP, so an event published before the reader arrives is not lost,
  and it expires on its own when nobody reads it.
- Worker presence: each worker process refreshes a heartbeat (its queues, the engines it has
  loaded, whether it has a GPU) that the web tier reads to tell a tenant "no GPU worker is
  running" instead of letting a request hang (every PARLA_WORKER_HEARTBEAT_SECONDS).

- Stream readers: the web process relaying a stream marks itself as its reader while it
  reads (a key with a TTL, refreshed with every read, removed when the client goes). A worker
  publishes a stream's chunks only while it has a reader, and never runs more than
  STREAM_BACKLOG_EVENTS ahead of it: a reader that stops reading stops the worker, so no
  channel grows without bound and nobody renders audio for a client that left.

In embedded mode (no Redis) the worker runs inside the web process, so both live in memory.
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
def presence_ttl_seconds() -> float:
    """A worker that has not refreshed its heartbeat for this long is considered gone."""
    return 3 * settings.PARLA_WORKER_HEARTBEAT_SECONDS


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


class _RedisLive:
    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url)
        self._prefix = prefix
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

    def heartbeat(self, worker_id: str, info: dict[str, Any]) -> None:
        key = f"{self._prefix}:workers"
        now = time.time()
        pipe = self._client.pipeline()
        pipe.hset(key, worker_id, json.dumps({**info, "seen": now}))
        pipe.expire(key, int(presence_ttl_seconds() * 10) + 1)
        pipe.execute()

    def forget(self, worker_id: str) -> None:
        self._client.hdel(f"{self._prefix}:workers", worker_id)

    def workers(self) -> dict[str, dict[str, Any]]:
        raw = self._client.hgetall(f"{self._prefix}:workers")
        return {key.decode(): json.loads(value) for key, value in raw.items()}

    def try_lock(self, name: str, seconds: int) -> bool:
        return bool(self._client.set(f"{self._prefix}:lock:{name}", "1", nx=True, ex=seconds))


class _MemoryLive:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[int, tuple[float, queue.Queue[JobEvent]]] = {}
        self._workers: dict[str, dict[str, Any]] = {}
        self._locks: dict[str, float] = {}
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

    def heartbeat(self, worker_id: str, info: dict[str, Any]) -> None:
        with self._lock:
            self._workers[worker_id] = {**info, "seen": time.time()}

    def forget(self, worker_id: str) -> None:
        with self._lock:
            self._workers.pop(worker_id, None)

    def workers(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._workers)

    def try_lock(self, name: str, seconds: int) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._locks.get(name, 0) > now:
                return False
            self._locks[name] = now + seconds
            return True


_backend: _RedisLive | _MemoryLive | None = None
_backend_lock = threading.Lock()


def _live() -> _RedisLive | _MemoryLive:
    global _backend
    with _backend_lock:
        if _backend is None:
            prefix = settings.CACHES["default"].get("KEY_PREFIX", "parla")
            _backend = _RedisLive(settings.REDIS_URL, prefix) if settings.REDIS_URL else _MemoryLive()
        return _backend


def job_event_publish(*, job_id: int, event: JobEvent) -> None:
    """Best effort: a waiting request falls back to reading the job row (Redis may be down)."""
    try:
        _live().publish(job_id, event)
    except Exception:  # noqa: BLE001  the job's outcome is in the database either way
        logger.warning("job_event_publish.failed", extra={"job_id": job_id, "kind": event.kind}, exc_info=True)


def job_event_next(*, job_id: int, timeout: float) -> JobEvent | None:
    """The job's next event, waiting up to `timeout` seconds; None if nothing came."""
    return _live().next_event(job_id, timeout)


def job_events_discard(*, job_id: int) -> None:
    _live().discard(job_id)


def job_cancel_mark(*, job_id: int) -> None:
    """Tell the worker running `job_id` that it was cancelled (it asks between sentences).
    Best effort: the job row says so too, and the worker's settlement reads that."""
    try:
        _live().cancel_mark(job_id)
    except Exception:  # noqa: BLE001  the job still ends cancelled, only later
        logger.warning("job_cancel_mark.failed", extra={"job_id": job_id}, exc_info=True)


def job_cancel_marked(*, job_id: int) -> bool:
    try:
        return _live().cancel_marked(job_id)
    except Exception:  # noqa: BLE001  see job_cancel_mark
        return False


def stream_reader_mark(*, job_id: int) -> None:
    """The stream of `job_id` has a reader (its relay, about to read); see the module docstring."""
    _live().reader_mark(job_id)


def stream_reader_gone(*, job_id: int) -> None:
    """The stream's reader left: its worker stops at the next chunk. Best effort."""
    try:
        _live().reader_gone(job_id)
    except Exception:  # noqa: BLE001  the reader key expires on its own
        logger.warning("stream_reader_gone.failed", extra={"job_id": job_id}, exc_info=True)


def stream_event_next(*, job_id: int, timeout: float) -> JobEvent | None:
    """job_event_next() for a stream's relay: it also renews the relay's mark as reader."""
    return _live().next_event_reading(job_id, timeout)


def stream_chunk_publish(*, job_id: int, data: bytes, wait_seconds: float) -> bool:
    """Publish a stream's chunk if it still has a reader, never more than
    STREAM_BACKLOG_EVENTS ahead of it: past that, wait (up to `wait_seconds`) for the reader
    to catch up. False: the reader is gone or stopped reading, so the stream should stop.
    """
    live = _live()
    length = live.publish_if_read(job_id, JobEvent("chunk", data=data))
    if length < 0:
        return False
    deadline = time.monotonic() + wait_seconds
    while length > STREAM_BACKLOG_EVENTS:
        time.sleep(STREAM_BACKLOG_POLL_SECONDS)
        length, reader = live.backlog(job_id)
        if not reader or time.monotonic() > deadline:
            return False
    return True


def worker_heartbeat(*, worker_id: str, info: dict[str, Any]) -> None:
    _live().heartbeat(worker_id, info)


def worker_forget(*, worker_id: str) -> None:
    _live().forget(worker_id)


def workers_alive() -> list[dict[str, Any]]:
    """Workers whose heartbeat is fresh: [{"queues": [...], "engines_loaded": [...], ...}]."""
    now = time.time()
    return [
        {"id": worker_id, **info}
        for worker_id, info in _live().workers().items()
        if now - info.get("seen", 0) <= presence_ttl_seconds()
    ]


def queue_has_worker(queue_name: str) -> bool:
    return any(queue_name in worker.get("queues", ()) for worker in workers_alive())


def broker_state_age() -> float | None:
    """Seconds since the broker's state began, or None if unknown (a durable broker).

    A Redis broker without persistence loses every queued message when Redis restarts, and
    embedded mode loses its in-memory queue when the process restarts. A marker key set the
    first time this is asked (and gone with such a loss) tells how old the state is; 0.0
    means it was lost just now, or this is the very first check.
    """
    import dramatiq

    broker = dramatiq.get_broker()
    now = time.time()
    client = getattr(broker, "client", None)
    if client is not None and hasattr(broker, "namespace"):  # RedisBroker
        key = f"{broker.namespace}:__parla_state_since__"
        if client.set(key, str(now), nx=True):
            return 0.0
        return now - float(client.get(key) or now)
    if type(broker).__name__ == "StubBroker":
        global _stub_state_since
        if _stub_state_since is None:
            _stub_state_since = now
            return 0.0
        return now - _stub_state_since
    return None


_stub_state_since: float | None = None


def maintenance_lock(*, name: str, seconds: int) -> bool:
    """True for exactly one caller across all workers per `seconds` window."""
    return _live().try_lock(name, seconds)


def reset_live_backend() -> None:
    """Tests: forget the backend so it is rebuilt from the current settings."""
    global _backend
    with _backend_lock:
        _backend = None
