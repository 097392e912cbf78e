"""Operators' metrics, served by GET /metrics in the Prometheus text format.

Parla runs as many web and worker processes on many hosts, so nothing here is a counter in
one process's memory that a scrape of another process would miss:

- Events (requests, finished syntheses, quota rejections) are counted in Redis hashes under
  `<cache key prefix>:metrics:<family>` with HINCRBY / HINCRBYFLOAT, by whichever process
  sees them. Histograms keep one field per bucket (not cumulative) plus a sum. Embedded mode
  (no Redis) has a single process, which counts in memory.
- State (jobs by status, queue depth, workers alive) is read when scraped: from the database,
  from the broker's own keys and from the workers' heartbeats.

`ParlaCollector` turns both into metric families; `metrics_render()` exposes them from a
private CollectorRegistry. Recording is best effort: a failure never reaches the request or
job that was being counted, and is logged once until recording works again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

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
    def __init__(self, url: str, prefix: str) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # Short timeouts and no retries: a slow Redis must not hold up what is being counted.
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
        )
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


_counts: _RedisCounts | _MemoryCounts | None = None
_counts_lock = threading.Lock()


def _store() -> _RedisCounts | _MemoryCounts:
    global _counts
    if _counts is not None:
        return _counts
    with _counts_lock:
        if _counts is None:
            prefix = settings.CACHES["default"].get("KEY_PREFIX", "parla")
            _counts = _RedisCounts(settings.REDIS_URL, prefix) if settings.REDIS_URL else _MemoryCounts()
        return _counts


# Which kinds of failure have been logged; cleared when that kind works again.
_failing: set[str] = set()
# After a failed write, events go uncounted for this long instead of each waiting on Redis.
RECORD_PAUSE_SECONDS = 5.0
_record_paused_until = 0.0


def _failed(kind: str) -> None:
    if kind not in _failing:
        _failing.add(kind)
        logger.warning("metrics.failed", extra={"part": kind}, exc_info=True)


def _recovered(kind: str) -> None:
    if kind in _failing:
        _failing.discard(kind)
        logger.info("metrics.recovered", extra={"part": kind})


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
        _failed("record")
        return
    _recovered("record")


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
    """A request refused by a tenant limit; `reason` is one of QUOTA_REASONS."""
    _record(_counter(QUOTA_REJECTIONS, (reason if reason in QUOTA_REASONS else "other",)))


# --- Scrape-time state -------------------------------------------------------------------------


def job_state_counts_all_tenants() -> dict[tuple[str, str], int]:
    """{(queue, status): jobs} over every tenant, for the operators' gauges."""
    from django.db.models import Count

    from synthesis.models import SynthesisJob

    rows = SynthesisJob.objects.values("queue_name", "status").annotate(jobs=Count("id")).order_by()
    return {(row["queue_name"], row["status"]): row["jobs"] for row in rows}


def queued_job_oldest_all_tenants() -> dict[str, float]:
    """{queue: seconds since the oldest still-queued job was created} over every tenant."""
    from django.db.models import Min
    from django.utils import timezone

    from synthesis.models import SynthesisJob

    rows = (
        SynthesisJob.objects.filter(status=SynthesisJob.Status.QUEUED)
        .values("queue_name").annotate(oldest=Min("created_at")).order_by()
    )
    now = timezone.now()
    return {row["queue_name"]: max(0.0, (now - row["oldest"]).total_seconds()) for row in rows}


def broker_queue_depths() -> dict[str, tuple[int, int, int]]:
    """{queue: (ready, delayed, dead-lettered)} messages as the broker holds them."""
    import dramatiq
    from dramatiq.common import dq_name, xq_name

    from config.dramatiq import QUEUES

    broker = dramatiq.get_broker()
    kind = type(broker).__name__
    if kind == "RedisBroker":
        # The Redis broker keeps a queue as a list of message ids at <namespace>:<queue>,
        # its delayed messages in the list <queue>.DQ and dead letters in the sorted set
        # <queue>.XQ (see dramatiq/brokers/redis/dispatch.lua).
        pipe = broker.client.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(f"{broker.namespace}:{queue}")
            pipe.llen(f"{broker.namespace}:{dq_name(queue)}")
            pipe.zcard(f"{broker.namespace}:{xq_name(queue)}")
        counts = pipe.execute()
        return {queue: tuple(counts[3 * i : 3 * i + 3]) for i, queue in enumerate(QUEUES)}
    if kind == "StubBroker":
        return {
            queue: (
                broker.queues[queue].qsize() if queue in broker.queues else 0,
                broker.queues[dq_name(queue)].qsize() if dq_name(queue) in broker.queues else 0,
                len(broker.dead_letters_by_queue.get(queue, ())),
            )
            for queue in QUEUES
        }
    if kind == "RabbitmqBroker":
        return {queue: tuple(broker.get_queue_message_counts(queue)) for queue in QUEUES}
    return {}


class ParlaCollector:
    """Everything /metrics shows, gathered at scrape time. A source that cannot be read is
    left out of that scrape, and parla_metrics_source_up says which."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("parla_metrics_source_up",
                               "1 if this scrape could read the source, 0 if it failed.", labels=["source"])
        for source, gather in (
            ("counters", self._counted),
            ("database", self._jobs),
            ("broker", self._queues),
            ("workers", self._workers),
        ):
            try:
                families = list(gather())
            except Exception:  # noqa: BLE001  one source down must not hide the others
                _failed(f"scrape:{source}")
                up.add_metric([source], 0)
                continue
            _recovered(f"scrape:{source}")
            up.add_metric([source], 1)
            yield from families
        yield up

    def _counted(self) -> Iterator[Metric]:
        values = _store().read(family.name for family in COUNTED_FAMILIES)
        for family in COUNTED_FAMILIES:
            if family.kind == "counter":
                yield self._counter_family(family, values[family.name])
            else:
                yield self._histogram_family(family, values[family.name])

    @staticmethod
    def _counter_family(family: Family, values: dict[str, float]) -> CounterMetricFamily:
        metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
        seen = set()
        for field, value in sorted(values.items()):
            labels = json.loads(field)
            if len(labels) == len(family.labels):
                metric.add_metric(labels, value)
                seen.add(tuple(labels))
        if family is QUOTA_REJECTIONS:  # Every reason is shown, so rate() works from the start.
            for reason in QUOTA_REASONS:
                if (reason,) not in seen:
                    metric.add_metric([reason], 0)
        return metric

    @staticmethod
    def _histogram_family(family: Family, values: dict[str, float]) -> HistogramMetricFamily:
        buckets: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        sums: dict[tuple[str, ...], float] = defaultdict(float)
        width = len(family.labels)
        for field, value in values.items():
            parts = json.loads(field)
            labels, rest = tuple(parts[:width]), parts[width:]
            if rest == ["sum"]:
                sums[labels] = value
            elif len(rest) == 2 and rest[0] == "le":
                buckets[labels][rest[1]] = value
        metric = HistogramMetricFamily(family.name, family.help, labels=family.labels)
        for labels in sorted(buckets):
            counts, cumulative, series = buckets[labels], 0.0, []
            for bound in (*map(floatToGoString, family.buckets), "+Inf"):
                cumulative += counts.get(bound, 0)
                series.append((bound, cumulative))
            metric.add_metric(list(labels), series, sum_value=sums.get(labels, 0.0))
        return metric

    @staticmethod
    def _jobs() -> Iterator[Metric]:
        from config.dramatiq import QUEUE_SYNTHESIS_CPU, QUEUE_SYNTHESIS_GPU
        from synthesis.models import SynthesisJob

        counts = job_state_counts_all_tenants()
        jobs = GaugeMetricFamily("parla_jobs", "Synthesis jobs in the database, by queue and status.",
                                 labels=["queue", "status"])
        queues = sorted({QUEUE_SYNTHESIS_CPU, QUEUE_SYNTHESIS_GPU} | {queue for queue, _ in counts})
        for queue in queues:
            for status in SynthesisJob.Status.values:
                jobs.add_metric([queue, status], counts.get((queue, status), 0))
        yield jobs
        oldest = queued_job_oldest_all_tenants()
        age = GaugeMetricFamily("parla_jobs_oldest_queued_age_seconds",
                                "Seconds since the oldest job still queued was created (0: none queued).",
                                labels=["queue"])
        for queue in queues:
            age.add_metric([queue], oldest.get(queue, 0.0))
        yield age

    @staticmethod
    def _queues() -> Iterator[Metric]:
        depths = broker_queue_depths()
        depth = GaugeMetricFamily(
            "parla_queue_depth", "Messages waiting in a Dramatiq queue: ready to run, or delayed (retries).",
            labels=["queue", "state"],
        )
        dead = GaugeMetricFamily(
            "parla_queue_dead_letters", "Messages a Dramatiq queue gave up on (kept for a week).", labels=["queue"]
        )
        for queue, (ready, delayed, dead_letters) in sorted(depths.items()):
            depth.add_metric([queue, "ready"], ready)
            depth.add_metric([queue, "delayed"], delayed)
            dead.add_metric([queue], dead_letters)
        yield depth
        yield dead

    @staticmethod
    def _workers() -> Iterator[Metric]:
        from synthesis.live import workers_alive

        now = time.time()
        workers = workers_alive()
        alive: dict[tuple[str, str, str], int] = defaultdict(int)
        age = GaugeMetricFamily("parla_worker_heartbeat_age_seconds",
                                "Seconds since each live worker process last reported in.",
                                labels=["worker", "host", "device"])
        for worker in sorted(workers, key=lambda w: w["id"]):
            host, device = str(worker.get("host", "")), str(worker.get("device", ""))
            age.add_metric([worker["id"], host, device], max(0.0, now - float(worker.get("seen", now))))
            for queue in worker.get("queues", ()):
                alive[(queue, host, device)] += 1
        count = GaugeMetricFamily(
            "parla_workers_alive", "Worker processes with a fresh heartbeat, by queue they consume, host and device.",
            labels=["queue", "host", "device"],
        )
        for labels, n in sorted(alive.items()):
            count.add_metric(list(labels), n)
        yield count
        yield age


_registry: CollectorRegistry | None = None
_registry_lock = threading.Lock()


def metrics_render() -> tuple[bytes, str]:
    """The text exposition of every Parla metric, and its content type."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = CollectorRegistry(auto_describe=False)
            _registry.register(ParlaCollector())
    return generate_latest(_registry), CONTENT_TYPE_LATEST
