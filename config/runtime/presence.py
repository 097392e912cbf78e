"""Worker presence: which worker processes are running, what they consume and have loaded.

Each worker process refreshes a heartbeat (its queues, host and pid, and what the apps add:
the engines it has loaded, its device) every PARLA_WORKER_HEARTBEAT_SECONDS (worker.py). The
web tier reads them to tell a tenant "no GPU worker is running" instead of letting a request
hang, and the upkeep to tell a job whose worker died. In embedded mode (no Redis) the worker
runs inside the web process, so presence lives in memory.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from config.runtime.connection import key_prefix, runtime_backend

# This process's worker id once a worker has booted in it (jobs record who runs them).
_current_worker_id = ""

# What the apps add to each heartbeat (synthesis: the engines loaded, the device).
_info_sources: list[Callable[[], dict[str, Any]]] = []


def presence_ttl_seconds() -> float:
    """A worker that has not refreshed its heartbeat for this long is considered gone."""
    return 3 * settings.PARLA_WORKER_HEARTBEAT_SECONDS


class _RedisPresence:
    def __init__(self, client) -> None:
        self._client = client
        self._key = f"{key_prefix()}:workers"

    def heartbeat(self, worker_id: str, info: dict[str, Any]) -> None:
        now = time.time()
        pipe = self._client.pipeline()
        pipe.hset(self._key, worker_id, json.dumps({**info, "seen": now}))
        pipe.expire(self._key, int(presence_ttl_seconds() * 10) + 1)
        pipe.execute()

    def forget(self, worker_id: str) -> None:
        self._client.hdel(self._key, worker_id)

    def workers(self) -> dict[str, dict[str, Any]]:
        raw = self._client.hgetall(self._key)
        return {key.decode(): json.loads(value) for key, value in raw.items()}


class _MemoryPresence:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: dict[str, dict[str, Any]] = {}

    def heartbeat(self, worker_id: str, info: dict[str, Any]) -> None:
        with self._lock:
            self._workers[worker_id] = {**info, "seen": time.time()}

    def forget(self, worker_id: str) -> None:
        with self._lock:
            self._workers.pop(worker_id, None)

    def workers(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._workers)


def _presence() -> _RedisPresence | _MemoryPresence:
    return runtime_backend("presence", redis_backend=_RedisPresence, memory_backend=_MemoryPresence)


def current_worker_id() -> str:
    """The id of the worker running in this process ("" outside a worker)."""
    return _current_worker_id


def current_worker_id_set(worker_id: str) -> None:
    global _current_worker_id
    _current_worker_id = worker_id


def worker_info_source_register(source: Callable[[], dict[str, Any]]) -> None:
    """Add `source()`'s keys to every heartbeat of this process (call from AppConfig.ready())."""
    if source not in _info_sources:
        _info_sources.append(source)


def worker_info(base: dict[str, Any]) -> dict[str, Any]:
    """A heartbeat's details: `base` and what every registered source adds."""
    info = dict(base)
    for source in _info_sources:
        info.update(source())
    return info


def worker_heartbeat(*, worker_id: str, info: dict[str, Any]) -> None:
    _presence().heartbeat(worker_id, info)


def worker_forget(*, worker_id: str) -> None:
    _presence().forget(worker_id)


def workers_alive() -> list[dict[str, Any]]:
    """Workers whose heartbeat is fresh: [{"queues": [...], "engines_loaded": [...], ...}]."""
    now = time.time()
    return [
        {"id": worker_id, **info}
        for worker_id, info in _presence().workers().items()
        if now - info.get("seen", 0) <= presence_ttl_seconds()
    ]


def queue_has_worker(queue_name: str) -> bool:
    return any(queue_name in worker.get("queues", ()) for worker in workers_alive())
