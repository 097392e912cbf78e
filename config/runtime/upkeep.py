"""Periodic upkeep: tasks the apps register, run by one worker at a time (see worker.py).

Each app registers its own upkeep in AppConfig.ready() with `upkeep_task_register`: synthesis
recovers lost and orphaned jobs, voices its enrollments, tenants releases stale holds and
purges idempotency keys, analytics rolls up ledger rows. A round runs the tasks stage by stage
(UPKEEP_STAGES), in the order they were registered within a stage, and returns how much each
did under the name it was registered with. The tasks cross tenants by design.

Also here: the short lock that keeps two workers from running a round at once, and
broker-loss detection (a broker that lost its queued messages, whose jobs need sending again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from config.runtime.connection import key_prefix, runtime_backend
from config.runtime.presence import workers_alive

logger = logging.getLogger(__name__)

# Held while one worker runs the upkeep, so two never run it at once.
UPKEEP_LOCK_SECONDS = 20
# The lock's name (its Redis key is "<prefix>:lock:maintenance").
UPKEEP_LOCK_NAME = "maintenance"

# The order of a round: work whose message or worker was lost is recovered first, so that
# what is released next (holds whose work died) is judged after recovery had its say; the
# ledger is rolled up last, with the rows the steps before it wrote.
UPKEEP_STAGES = ("recover", "release", "rollup")


@dataclass(frozen=True)
class UpkeepRound:
    """What every task of one round is told, asked once per round."""

    # The broker lost its queued messages just now (broker_state_age() == 0.0). It says so
    # only to the first to ask after the loss: every task that needs it reads it here.
    broker_lost: bool
    # Workers with a fresh heartbeat.
    alive_worker_ids: frozenset[str]


@dataclass(frozen=True)
class _Task:
    name: str
    func: Callable[[UpkeepRound], int]
    stage: str


_tasks: dict[str, _Task] = {}


def upkeep_task_register(name: str, func: Callable[[UpkeepRound], int], *, stage: str = "recover") -> None:
    """Run `func(round)` in every upkeep round; it returns how much it did, reported as `name`.
    Registering a name again replaces its task."""
    if stage not in UPKEEP_STAGES:
        raise ValueError(f"Unknown upkeep stage {stage!r}; the stages are {UPKEEP_STAGES}.")
    _tasks.pop(name, None)
    _tasks[name] = _Task(name=name, func=func, stage=stage)


def upkeep_run_all_tenants() -> dict[str, int]:
    """One round of every registered task: {task name: how much it did}. Crosses tenants."""
    upkeep_round = UpkeepRound(
        broker_lost=broker_state_age() == 0.0,
        alive_worker_ids=frozenset(worker["id"] for worker in workers_alive()),
    )
    done: dict[str, int] = {}
    for stage in UPKEEP_STAGES:
        for task in [task for task in _tasks.values() if task.stage == stage]:
            done[task.name] = task.func(upkeep_round)
    if any(done.values()):
        logger.info("maintenance.done", extra=done)
    return done


def upkeep_run_if_free() -> dict[str, int] | None:
    """A round, unless another worker ran one in the last UPKEEP_LOCK_SECONDS: then None."""
    if not upkeep_lock(name=UPKEEP_LOCK_NAME, seconds=UPKEEP_LOCK_SECONDS):
        return None
    return upkeep_run_all_tenants()


# --- The lock --------------------------------------------------------------------------------


class _RedisLock:
    def __init__(self, client) -> None:
        self._client = client
        self._prefix = key_prefix()

    def try_lock(self, name: str, seconds: int) -> bool:
        return bool(self._client.set(f"{self._prefix}:lock:{name}", "1", nx=True, ex=seconds))


class _MemoryLock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, float] = {}

    def try_lock(self, name: str, seconds: int) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._locks.get(name, 0) > now:
                return False
            self._locks[name] = now + seconds
            return True


def upkeep_lock(*, name: str, seconds: int) -> bool:
    """True for exactly one caller across all workers per `seconds` window."""
    return runtime_backend("locks", redis_backend=_RedisLock, memory_backend=_MemoryLock).try_lock(name, seconds)


# --- Broker loss -----------------------------------------------------------------------------


def broker_state_age() -> float | None:
    """Seconds since the broker's state began, or None if unknown (a durable broker).

    A Redis broker without persistence loses every queued message when Redis restarts, and
    embedded mode loses its in-memory queue when the process restarts. A marker key set the
    first time this is asked (and gone with such a loss) tells how old the state is; 0.0
    means it was lost just now, or this is the very first check.
    """
    import dramatiq

    broker = dramatiq.get_broker()
    now = time.time()
    client = getattr(broker, "client", None)
    if client is not None and hasattr(broker, "namespace"):  # RedisBroker
        key = f"{broker.namespace}:__parla_state_since__"
        if client.set(key, str(now), nx=True):
            return 0.0
        return now - float(client.get(key) or now)
    if type(broker).__name__ == "StubBroker":
        global _stub_state_since
        if _stub_state_since is None:
            _stub_state_since = now
            return 0.0
        return now - _stub_state_since
    return None


_stub_state_since: float | None = None
