"""Dramatiq wiring: broker choice, middleware, queues, and the one actor decorator.

Every Parla actor is declared through `parla_actor`, which insists on an explicit queue,
time limit and retry limit so that no actor runs on the library defaults.
"""

from collections.abc import Callable
from typing import Any

import dramatiq

QUEUE_SYNTHESIS_CPU = "synthesis-cpu"
QUEUE_SYNTHESIS_GPU = "synthesis-gpu"
QUEUE_EXPORTS = "exports"
QUEUE_DEFAULT = "default"
QUEUES = (QUEUE_SYNTHESIS_CPU, QUEUE_SYNTHESIS_GPU, QUEUE_EXPORTS, QUEUE_DEFAULT)

# Broker-wide fallbacks; each actor still states its own (see parla_actor).
BROKER_TIME_LIMIT_MS = 10 * 60 * 1000
BROKER_MAX_RETRIES = 3

_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Retries",
    "dramatiq.middleware.ShutdownNotifications",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    # Heartbeats (which queues have a worker, which engines are loaded) and upkeep.
    "synthesis.workers.WorkerPresence",
]


def dramatiq_broker_settings(*, redis_url: str, rabbitmq_url: str) -> dict[str, Any]:
    # RabbitMQ, when configured, carries the messages; Redis still holds cache and limits.
    if rabbitmq_url:
        broker, options = "dramatiq.brokers.rabbitmq.RabbitmqBroker", {"url": rabbitmq_url}
    elif redis_url:
        # Dramatiq's Redis broker, with idle workers woken at once by new messages.
        broker, options = "config.broker.RedisBroker", {"url": redis_url}
    else:
        # Embedded mode: an in-memory broker served by a worker inside the web process.
        broker, options = "dramatiq.brokers.stub.StubBroker", {}
    return {"BROKER": broker, "OPTIONS": options, "MIDDLEWARE": list(_MIDDLEWARE)}


def configure_broker(broker: dramatiq.Broker) -> None:
    """Declare Parla's queues and set the broker-wide limits explicitly."""
    for middleware in broker.middleware:
        if isinstance(middleware, dramatiq.middleware.TimeLimit):
            middleware.time_limit = BROKER_TIME_LIMIT_MS
        elif isinstance(middleware, dramatiq.middleware.Retries):
            middleware.max_retries = BROKER_MAX_RETRIES
    for queue_name in QUEUES:
        broker.declare_queue(queue_name)


def parla_actor(
    *, queue_name: str, time_limit_ms: int, max_retries: int, **options: Any
) -> Callable[[Callable[..., Any]], dramatiq.Actor]:
    if queue_name not in QUEUES:
        raise ValueError(f"Unknown queue {queue_name!r}; Parla's queues are {QUEUES}.")

    def decorator(fn: Callable[..., Any]) -> dramatiq.Actor:
        return dramatiq.actor(
            fn,
            queue_name=queue_name,
            time_limit=time_limit_ms,
            max_retries=max_retries,
            **options,
        )

    return decorator
