"""Operators' metrics, served by GET /metrics in the Prometheus text format.

What is counted as it happens (requests, finished syntheses, quota rejections) is recorded by
config.metrics_recording, in Redis so that every web and worker process counts into one place;
this module reads those counts when scraped, together with state read at that moment: jobs by
status from the database, queue depth from the broker's own keys, and workers alive from their
heartbeats. Every web process therefore answers for the whole fleet.

`ParlaCollector` turns both into metric families; `metrics_render()` exposes them from a
private CollectorRegistry.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from config.metrics_recording import (
    COUNTED_FAMILIES,
    QUOTA_REASONS,
    QUOTA_REJECTIONS,
    Family,
    counts_read,
    field_labels,
    metrics_failed,
    metrics_recovered,
)

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
                metrics_failed(f"scrape:{source}")
                up.add_metric([source], 0)
                continue
            metrics_recovered(f"scrape:{source}")
            up.add_metric([source], 1)
            yield from families
        yield up

    def _counted(self) -> Iterator[Metric]:
        values = counts_read(family.name for family in COUNTED_FAMILIES)
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
            labels = field_labels(field)
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
            parts = field_labels(field)
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
        from config.runtime.presence import workers_alive

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
