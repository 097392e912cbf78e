"""Recording operators' metrics: the cheap counters and histograms that code everywhere calls.

Parla runs as many web and worker processes on many hosts, so nothing here is a counter in
one process's memory that a scrape of another process would miss. Events (requests, finished
syntheses, quota rejections) are counted in Redis hashes under
`<cache key prefix>:metrics:<family>` with HINCRBY / HINCRBYFLOAT, by whichever process sees
them. Histograms keep one field per bucket (not cumulative) plus a sum. Embedded mode (no
Redis) has a single process, which counts in memory.

This module sits below every app, so any layer may record; what GET /metrics gathers at scrape
time (these counts, and state read from the database, the broker and the workers) lives in
analytics.metrics. Recording is best effort: a failure never reaches the request or job that
was being counted, and is logged once until recording works again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from config.runtime.connection import key_prefix, runtime_backend

logger = logging.getLogger(__name__)

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SYNTHESIS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
QUOTA_REASONS = ("characters", "rate_limit", "concurrent_jobs", "plan_limit")
# Anything else a client sends as its method is counted as "other" (labels stay bounded).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class Family:
    name: str  # a counter's name without its _total suffix
    kind: str  # "counter" or "histogram"
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


HTTP_REQUESTS = Family(
    "parla_http_requests", "counter",
    "HTTP requests answered, by URL route name (not path), method and status code.",
    ("endpoint", "method", "status"),
)
HTTP_DURATION = Family(
    "parla_http_request_duration_seconds", "histogram",
    "Seconds from receiving a request until its response starts, by URL route name and method.",
    ("endpoint", "method"), HTTP_BUCKETS,
)
SYNTHESIS_PROCESSING = Family(
    "parla_synthesis_processing_seconds", "counter",
    "Seconds workers spent synthesising finished jobs, by engine (cache hits excluded). "
    "Real-time factor: rate(this) / rate(parla_synthesis_audio_seconds_total).",
    ("engine",),
)
SYNTHESIS_AUDIO = Family(
    "parla_synthesis_audio_seconds", "counter",
    "Seconds of audio synthesised by finished jobs, by engine (cache hits excluded).",
    ("engine",),
)
SYNTHESIS_JOB_SECONDS = Family(
    "parla_synthesis_job_processing_seconds", "histogram",
    "Processing seconds of each synthesised job, by engine (cache hits excluded).",
    ("engine",), SYNTHESIS_BUCKETS,
)
SYNTHESIS_CACHE = Family(
    "parla_synthesis_cache_requests", "counter",
    "Finished jobs served from the audio cache (hit) or synthesised (miss), by engine.",
    ("engine", "result"),
)
QUOTA_REJECTIONS = Family(
    "parla_quota_rejections", "counter",
    "Requests refused by a tenant limit: characters (monthly quota), rate_limit (requests per "
    "minute), concurrent_jobs, plan_limit (voices, references, text length).",
    ("reason",),
)
COUNTED_FAMILIES = (
    HTTP_REQUESTS, HTTP_DURATION, SYNTHESIS_PROCESSING, SYNTHESIS_AUDIO, SYNTHESIS_JOB_SECONDS,
    SYNTHESIS_CACHE, QUOTA_REJECTIONS,
)


# --- Where counts are kept -------------------------------------------------------------------


class _RedisCounts:
    def __init__(self, client, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def _key(self, family: str) -> str:
        return f"{self._prefix}:metrics:{family}"

    def add(self, increments: Iterable[tuple[str, str, float]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for family, field, amount in increments:
            if isinstance(amount, int):
                pipe.hincrby(self._key(family), field, amount)
            else:
                pipe.hincrbyfloat(self._key(family), field, amount)
        pipe.execute()

    def read(self, families: Iterable[str]) -> dict[str, dict[str, float]]:
        families = list(families)
        pipe = self._client.pipeline(transaction=False)
        for family in families:
            pipe.hgetall(self._key(family))
        return {
            family: {field.decode(): float(value) for field, value in raw.items()}
            for family, raw in zip(families, pipe.execute(), strict=True)
        }


class _MemoryCounts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, float]] = defaultdict(dict)

    def add(self, increments: Iterable[tuple[str, str, float]]) -> None:
        with self._lock:
            for family, field, amount in increments:
                values = self._values[family]
                values[field] = values.get(field, 0) + amount

    def read(self, families: Iterable[str]) -> dict[str, dict[str, float]]:
        with self._lock:
            return {family: dict(self._values.get(family, {})) for family in families}


def _store() -> _RedisCounts | _MemoryCounts:
    # A client with short timeouts and no retries: a slow Redis must not hold up what is
    # being counted.
    return runtime_backend("metrics", redis_backend=lambda client: _RedisCounts(client, key_prefix()),
                           memory_backend=_MemoryCounts, fail_fast=True)


def counts_read(families: Iterable[str]) -> dict[str, dict[str, float]]:
    """{family: {field: value}} as recorded by every process; raises when the store cannot be read."""
    return _store().read(families)


# Which kinds of failure have been logged; cleared when that kind works again.
_failing: set[str] = set()
# After a failed write, events go uncounted for this long instead of each waiting on Redis.
RECORD_PAUSE_SECONDS = 5.0
_record_paused_until = 0.0


def metrics_failed(part: str) -> None:
    """Log a failure of `part` ("record", "scrape:<source>") once, until it works again.
    Call it from an except block: the exception is logged with it."""
    if part not in _failing:
        _failing.add(part)
        logger.warning("metrics.failed", extra={"part": part}, exc_info=True)


def metrics_recovered(part: str) -> None:
    if part in _failing:
        _failing.discard(part)
        logger.info("metrics.recovered", extra={"part": part})


def field_labels(field: str) -> list[str]:
    """The label values (and, for a histogram, "le" and its bound, or "sum") of a stored field."""
    return json.loads(field)


def _field(*values: object) -> str:
    return json.dumps([str(value) for value in values], separators=(",", ":"))


def _bucket(family: Family, value: float) -> str:
    for bound in family.buckets:
        if value <= bound:
            return floatToGoString(bound)
    return "+Inf"


def _counter(family: Family, labels: tuple, amount: float = 1) -> list[tuple[str, str, float]]:
    return [(family.name, _field(*labels), amount)]


def _observation(family: Family, labels: tuple, value: float) -> list[tuple[str, str, float]]:
    return [
        (family.name, _field(*labels, "le", _bucket(family, value)), 1),
        (family.name, _field(*labels, "sum"), float(value)),
    ]


def _record(increments: list[tuple[str, str, float]]) -> None:
    global _record_paused_until
    if time.monotonic() < _record_paused_until:
        return
    try:
        _store().add(increments)
    except Exception:  # noqa: BLE001  counting must never break the work being counted
        _record_paused_until = time.monotonic() + RECORD_PAUSE_SECONDS
        metrics_failed("record")
        return
    metrics_recovered("record")


# --- What the rest of Parla calls ------------------------------------------------------------


def http_request_observe(*, endpoint: str, method: str, status: int, seconds: float) -> None:
    method = method.upper() if method and method.upper() in HTTP_METHODS else "other"
    status_label = str(status) if 100 <= status <= 599 else "other"
    _record([
        *_counter(HTTP_REQUESTS, (endpoint, method, status_label)),
        *_observation(HTTP_DURATION, (endpoint, method), max(0.0, seconds)),
    ])


def synthesis_job_observe(
    *, engine: str, processing_seconds: float, audio_seconds: float, cache_hit: bool
) -> None:
    """A job finished with audio (called once per job, by the worker that finished it)."""
    increments = _counter(SYNTHESIS_CACHE, (engine, "hit" if cache_hit else "miss"))
    if not cache_hit:
        increments += [
            *_counter(SYNTHESIS_PROCESSING, (engine,), float(max(0.0, processing_seconds))),
            *_counter(SYNTHESIS_AUDIO, (engine,), float(max(0.0, audio_seconds or 0.0))),
            *_observation(SYNTHESIS_JOB_SECONDS, (engine,), max(0.0, processing_seconds)),
        ]
    _record(increments)


def quota_rejection_count(*, reason: str) -> None:
    """A request refused by a tenant limit; `reason` is one of QUOTA_REASONS.

    Called where the refusal is answered (tenants.errors.quota_rejection_record), never where
    the error is built: an error can be built, caught and raised again, or never reach anyone."""
    _record(_counter(QUOTA_REJECTIONS, (reason if reason in QUOTA_REASONS else "other",)))
