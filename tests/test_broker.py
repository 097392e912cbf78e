"""Idle workers are woken by new messages (config.runtime.broker) on the real Redis."""

import os
import threading
import uuid

import dramatiq
import pytest
from dramatiq.common import dq_name

from config.runtime.broker import WAKE_TOKENS_MAX, RedisBroker


@pytest.fixture
def broker():
    broker = RedisBroker(url=os.environ["REDIS_URL"], namespace=f"parla-test-broker-{uuid.uuid4().hex[:8]}")
    broker.declare_queue("wake-test")
    yield broker
    keys = list(broker.client.scan_iter(f"{broker.namespace}:*"))
    if keys:
        broker.client.delete(*keys)
    broker.close()


def _message(broker, **kwargs) -> dramatiq.Message:
    return dramatiq.Message(queue_name="wake-test", actor_name="noop", args=(), kwargs={}, options=kwargs)


def test_an_idle_consumer_is_woken_by_an_enqueue_long_before_its_idle_timeout(broker):
    # A one-minute idle timeout: without the wake-up the consumer would sleep through the test.
    consumer = broker.consume("wake-test", prefetch=1, timeout=60_000)
    returned = threading.Event()

    def wait_idle():
        assert next(consumer) is None  # nothing queued: it waits, then reports idle
        returned.set()

    waiter = threading.Thread(target=wait_idle, daemon=True)
    waiter.start()
    assert not returned.wait(1.0)  # it is waiting, not polling

    sent = broker.enqueue(_message(broker))

    assert returned.wait(20.0), "the enqueue did not wake the idle consumer"
    received = next(consumer)
    assert received is not None and received.message_id == sent.message_id
    consumer.ack(received)


def test_wake_tokens_are_bounded_and_expire(broker):
    for _ in range(WAKE_TOKENS_MAX + 10):
        broker.enqueue(_message(broker))

    key = broker.wake_key("wake-test")
    assert broker.client.llen(key) == WAKE_TOKENS_MAX
    assert 0 < broker.client.pttl(key) <= 60_000


def test_delayed_messages_do_not_wake_and_delay_queues_do_not_wait_on_tokens(broker):
    broker.enqueue(_message(broker), delay=60_000)

    assert broker.client.llen(broker.wake_key("wake-test")) == 0
    assert broker.consume(dq_name("wake-test"), prefetch=1, timeout=10).wake_key is None


def test_the_projects_broker_is_this_one_under_dramatiqs_name():
    from dramatiq.brokers import redis as dramatiq_redis

    current = dramatiq.get_broker()

    assert isinstance(current, RedisBroker) and isinstance(current, dramatiq_redis.RedisBroker)
    assert type(current).__name__ == "RedisBroker"
