"""The one connection to Redis that runtime state shares, or in-memory state when embedded.

With REDIS_URL set, every process talks to the same Redis: job events, worker presence, the
upkeep lock, rate-limit windows and metric counts all live there, under the cache key prefix.
Embedded mode (no Redis) runs web and worker in one process, so each of those keeps its state
in that process's memory instead. Each user supplies both kinds of backend (`runtime_backend`);
this module builds one of them once per process and hands the same one to every caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings

if TYPE_CHECKING:
    import redis

T = TypeVar("T")

_lock = threading.Lock()
_clients: dict[bool, redis.Redis] = {}
_backends: dict[str, object] = {}


def key_prefix() -> str:
    """The prefix of every key runtime state writes (the cache's, so installations sharing a
    Redis stay apart)."""
    return settings.CACHES["default"].get("KEY_PREFIX", "parla")


def redis_connect(url: str, *, fail_fast: bool = False) -> redis.Redis:
    """A new client for `url`. `fail_fast`: one-second timeouts and no retries, for callers that
    would rather skip their work than wait on a slow Redis (metrics)."""
    import redis

    if not fail_fast:
        return redis.Redis.from_url(url)
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0))


def redis_client(*, fail_fast: bool = False) -> redis.Redis | None:
    """This process's client for REDIS_URL, or None in embedded mode (no Redis)."""
    if not settings.REDIS_URL:
        return None
    client = _clients.get(fail_fast)
    if client is None:
        with _lock:
            client = _clients.get(fail_fast)
            if client is None:
                client = _clients[fail_fast] = redis_connect(settings.REDIS_URL, fail_fast=fail_fast)
    return client


def runtime_backend(name: str, *, redis_backend: Callable[[redis.Redis], T], memory_backend: Callable[[], T],
                    fail_fast: bool = False) -> T:
    """The process's one `name` backend: `redis_backend(client)` when Redis is configured, else
    `memory_backend()`. Built on first use, so settings are read once Django is set up."""
    backend = _backends.get(name)
    if backend is None:
        client = redis_client(fail_fast=fail_fast)
        with _lock:
            backend = _backends.get(name)
            if backend is None:
                backend = _backends[name] = redis_backend(client) if client is not None else memory_backend()
    return backend  # type: ignore[return-value]


def connection_reset() -> None:
    """Tests: forget the clients and backends (in-memory state included), so that they are
    built again from the current settings."""
    with _lock:
        _clients.clear()
        _backends.clear()
