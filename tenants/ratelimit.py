"""Requests-per-minute limits per tenant, shared by all of the tenant's keys.

A sliding-window log: a request is admitted only if fewer than `limit` requests were
admitted in the last `window` seconds, so no 60-second span ever holds more than the plan
allows (a fixed window lets twice the limit through around its edge). With Redis the check
and the write are one Lua script, atomic across every web process; in embedded mode one
process serves everything and a lock suffices.
"""

import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

from config.runtime.connection import key_prefix, runtime_backend

_SLIDING_WINDOW_LUA = """
local key = KEYS[1]
local window_ms = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local member = ARGV[3]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window_ms)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now_ms, member)
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', key, window_ms)
local reset_ms = 0
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[2] then
  reset_ms = tonumber(oldest[2]) + window_ms - now_ms
end
return {allowed, count, reset_ms}
"""


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until the oldest counted request leaves the window (a slot frees up).
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


class _RedisSlidingWindow:
    def __init__(self, client) -> None:
        self._client = client
        self._script = self._client.register_script(_SLIDING_WINDOW_LUA)

    def hit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, int, float]:
        allowed, count, reset_ms = self._script(
            keys=[key], args=[window_seconds * 1000, limit, uuid.uuid4().hex]
        )
        return bool(allowed), int(count), int(reset_ms) / 1000


class _LocalSlidingWindow:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, int, float]:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window_seconds:
                hits.popleft()
            allowed = len(hits) < limit
            if allowed:
                hits.append(now)
            reset = hits[0] + window_seconds - now if hits else 0.0
            return allowed, len(hits), reset


def _windows() -> _RedisSlidingWindow | _LocalSlidingWindow:
    return runtime_backend("rate_limits", redis_backend=_RedisSlidingWindow, memory_backend=_LocalSlidingWindow)


def rate_limit_hit(*, key: str, limit: int, window_seconds: int = 60) -> RateLimitResult:
    allowed, count, reset = _windows().hit(f"{key_prefix()}:rl:{key}", limit, window_seconds)
    return RateLimitResult(
        allowed=allowed,
        limit=limit,
        remaining=max(0, limit - count),
        reset_seconds=max(1, math.ceil(reset)) if count else 0,
    )


def tenant_rate_limit_hit(*, tenant) -> RateLimitResult:
    """Count one request against the tenant's plan (requests_per_minute).

    The API counts every request here and the dashboard every page post that makes work, in
    one window per tenant: the plan's limit holds however the work is asked for.
    """
    return rate_limit_hit(key=f"tenant:{tenant.pk}", limit=tenant.plan.requests_per_minute)
