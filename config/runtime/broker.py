"""The broker: which one (Dramatiq's settings), its set-up when Django starts, and the Redis
broker with idle workers woken by new messages instead of polling blind.

Dramatiq's Redis consumer finds new messages by polling: an idle worker sleeps a growing
back-off (up to the worker timeout) between looks, so a message waits half that on average
before anyone starts it — most of a short synchronous request. Here every immediate enqueue
also pushes a token on the queue's wake-up list, and an idle consumer waits on that list with
BLPOP (up to the same timeout) instead of sleeping. Tokens are bounded and expire; a lost or
extra token costs one poll, never a message: the messages themselves are Dramatiq's as ever.
"""

import logging
import time
from typing import Any

import dramatiq
import redis
from dramatiq.brokers import redis as dramatiq_redis
from dramatiq.common import dq_name
from dramatiq.errors import ConnectionClosed

from config.dramatiq import QUEUES

logger = logging.getLogger(__name__)

# Broker-wide fallbacks; each actor still states its own (see config.dramatiq.parla_actor).
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
    "config.runtime.worker.WorkerPresence",
]


def dramatiq_broker_settings(*, redis_url: str, rabbitmq_url: str) -> dict[str, Any]:
    """DRAMATIQ_BROKER for the settings (django_dramatiq builds the broker from it)."""
    # RabbitMQ, when configured, carries the messages; Redis still holds cache and limits.
    if rabbitmq_url:
        broker, options = "dramatiq.brokers.rabbitmq.RabbitmqBroker", {"url": rabbitmq_url}
    elif redis_url:
        # Dramatiq's Redis broker, with idle workers woken at once by new messages.
        broker, options = "config.runtime.broker.RedisBroker", {"url": redis_url}
    else:
        # Embedded mode: an in-memory broker served by a worker inside the web process.
        broker, options = "dramatiq.brokers.stub.StubBroker", {}
    return {"BROKER": broker, "OPTIONS": options, "MIDDLEWARE": list(_MIDDLEWARE)}


def configure_broker(broker: dramatiq.Broker) -> None:
    """Declare Parla's queues and set the broker-wide limits explicitly (config.runtime.apps
    calls it once django_dramatiq has built the broker)."""
    for middleware in broker.middleware:
        if isinstance(middleware, dramatiq.middleware.TimeLimit):
            middleware.time_limit = BROKER_TIME_LIMIT_MS
        elif isinstance(middleware, dramatiq.middleware.Retries):
            middleware.max_retries = BROKER_MAX_RETRIES
    for queue_name in QUEUES:
        broker.declare_queue(queue_name)


# --- The Redis broker ------------------------------------------------------------------------

# More tokens than this are pointless: each wakes one idle consumer, which then fetches
# up to its prefetch; leftovers only cause an extra look at an empty queue.
WAKE_TOKENS_MAX = 32
WAKE_TOKENS_TTL_MS = 60_000


class RedisBroker(dramatiq_redis.RedisBroker):
    # Same name as Dramatiq's: health checks and metrics report the backend by class name.
    def wake_key(self, queue_name: str) -> str:
        return f"{self.namespace}:__wake__:{queue_name}"

    @property
    def consumer_class(self):
        return _WakingConsumer

    def enqueue(self, message, *, delay=None):
        message = super().enqueue(message, delay=delay)
        if not delay:  # delayed messages wake their queue when they come due
            key = self.wake_key(message.queue_name)
            try:
                pipe = self.client.pipeline(transaction=False)
                pipe.lpush(key, 1)
                pipe.ltrim(key, 0, WAKE_TOKENS_MAX - 1)
                pipe.pexpire(key, WAKE_TOKENS_TTL_MS)
                pipe.execute()
            except redis.RedisError:
                # The message is queued; a worker finds it at its next poll.
                logger.warning("broker.wake_failed", extra={"queue": message.queue_name}, exc_info=True)
        return message


class _WakingConsumer(dramatiq_redis._RedisConsumer):
    def __init__(self, broker, queue_name, prefetch, timeout):
        # The parent looks once without sleeping (a back-off ceiling of 0); the waiting is ours.
        super().__init__(broker, queue_name, prefetch, 0)
        self.idle_seconds = max(timeout, 10) / 1000
        # Delay queues have no wake-up list (their messages come due by time): they just wait.
        self.wake_key = None if queue_name == dq_name(queue_name) else broker.wake_key(queue_name)

    def __next__(self):
        message = super().__next__()
        if message is None:
            if self.wake_key is not None and self.outstanding_message_count < self.prefetch:
                try:
                    self.broker.client.blpop([self.wake_key], timeout=self.idle_seconds)
                except redis.ConnectionError as exc:
                    raise ConnectionClosed(exc) from None
            else:
                # Busy (prefetch full) or a delay queue: wait as Dramatiq's consumer would.
                time.sleep(self.idle_seconds)
        return message
