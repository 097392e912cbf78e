"""The Redis broker, with idle workers woken by new messages instead of polling blind.

Dramatiq's Redis consumer finds new messages by polling: an idle worker sleeps a growing
back-off (up to the worker timeout) between looks, so a message waits half that on average
before anyone starts it — most of a short synchronous request. Here every immediate enqueue
also pushes a token on the queue's wake-up list, and an idle consumer waits on that list with
BLPOP (up to the same timeout) instead of sleeping. Tokens are bounded and expire; a lost or
extra token costs one poll, never a message: the messages themselves are Dramatiq's as ever.
"""

import logging
import time

import redis
from dramatiq.brokers import redis as dramatiq_redis
from dramatiq.common import dq_name
from dramatiq.errors import ConnectionClosed

logger = logging.getLogger(__name__)

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
