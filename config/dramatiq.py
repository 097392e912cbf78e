"""Parla's queues and the one actor decorator (the broker itself: config.runtime.broker).

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
