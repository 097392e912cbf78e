from config.dramatiq import QUEUE_DEFAULT, parla_actor


# A ping nobody consumed within a minute is dropped rather than left in the queue.
@parla_actor(queue_name=QUEUE_DEFAULT, time_limit_ms=10 * 1000, max_retries=0, max_age=60 * 1000)
def worker_ping(token: str) -> None:
    """Round trip for `/health?deep=1`: proves a worker consumes the default queue."""
    from django.core.cache import cache

    cache.set(f"worker_ping:{token}", "pong", timeout=60)
