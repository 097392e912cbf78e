"""What the job lifecycle announces to the apps above it; they subscribe in AppConfig.ready().

    # analytics/apps.py: the usage ledger
    on_job_charged(lambda charge: usage_record_create(...),
                   ctes=lambda charge, source: usage_record_ctes(...), after_commit=usage_rollup_soon)
    on_job_failed(lambda job: usage_failure_record(...))
    # batches/apps.py: a batch learns that an item ended
    on_job_finished(lambda job: job.batch_id and batch_item_finished(...))

Synthesis never imports its listeners. Charges and failures are announced inside the
transaction that settles the job, with its row locked, so what a listener writes commits or
rolls back with the settlement: a redelivered message or a recovered job can never bill twice.
"Finished" listeners run after that commit, in the order they registered.

On PostgreSQL a job settles in one statement (synthesis.jobs.statements): a charge listener
that also gives `ctes` (its writes as CTEs of that statement, reading the job from the CTE
`source`) takes part in it, and its `after_commit(tenant_id)` runs once it committed.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from synthesis.models import SynthesisJob


@dataclass(frozen=True)
class FinishedJob:
    tenant_id: int
    job_id: int
    batch_id: int | None


@dataclass(frozen=True)
class JobCharge:
    """What a job is billed as it settles (it succeeded, or a stream stopped after sending audio)."""

    job: "SynthesisJob"  # the locked row, its audio fields as settled (one statement: the job, for its ids)
    characters_billed: int
    cached: bool
    processing_seconds: float
    model_version: str
    gpu_seconds: float | None = None
    first: bool = False  # the caller saw the row unfinished: no charge of it can exist yet
    at: dt.datetime | None = None  # when it settled (a one-statement settlement writes it)


_finished: list[Callable[[FinishedJob], None]] = []
@dataclass(frozen=True)
class ChargeListener:
    record: Callable[[JobCharge], None]  # inside the settling transaction, with the job row locked
    ctes: Callable[[JobCharge, str], tuple[str, dict]] | None = None  # (charge, source) -> (CTEs, parameters)
    after_commit: Callable[[int], None] | None = None  # (tenant_id), after a one-statement settlement


_charged: list[ChargeListener] = []
_failed: list[Callable[["SynthesisJob"], None]] = []


def _register(listeners: list, listener):
    if listener not in listeners:
        listeners.append(listener)
    return listener


def on_job_finished(listener: Callable[[FinishedJob], None]) -> Callable[[FinishedJob], None]:
    """Call `listener` after each job ends (succeeded, failed or cancelled), after commit."""
    return _register(_finished, listener)


def on_job_charged(
    listener: Callable[[JobCharge], None],
    *,
    ctes: Callable[[JobCharge, str], tuple[str, dict]] | None = None,
    after_commit: Callable[[int], None] | None = None,
) -> Callable[[JobCharge], None]:
    """Call `listener` with each charge, inside the settling transaction (or, with `ctes`,
    take part in the one settling statement and then call `after_commit`)."""
    if all(registered.record is not listener for registered in _charged):
        _charged.append(ChargeListener(record=listener, ctes=ctes, after_commit=after_commit))
    return listener


def on_job_failed(listener: Callable[["SynthesisJob"], None]) -> Callable[["SynthesisJob"], None]:
    """Call `listener` with each job that failed, inside the transaction that marks it failed."""
    return _register(_failed, listener)


def job_finished(job: "SynthesisJob") -> None:
    """Announce, after commit, that `job` ended."""
    finished = FinishedJob(tenant_id=job.tenant_id, job_id=job.pk, batch_id=job.batch_id)
    for listener in list(_finished):
        transaction.on_commit(lambda listener=listener: listener(finished))


def _charge_listeners() -> list[ChargeListener]:
    """Nobody listening for charges would be work given away: that is an error."""
    if not _charged:
        raise RuntimeError("No usage ledger listens for job charges (is the analytics app installed?).")
    return list(_charged)


def job_charged(charge: JobCharge) -> None:
    """Announce a charge, inside the settling transaction."""
    for listener in _charge_listeners():
        listener.record(charge)


def job_charge_ctes(charge: JobCharge, *, source: str) -> list[tuple[str, dict]] | None:
    """The listeners' writes for `charge` as CTEs of one statement; None if one of them has none."""
    listeners = _charge_listeners()
    if any(listener.ctes is None for listener in listeners):
        return None
    return [listener.ctes(charge, source) for listener in listeners]


def job_charge_committed(charge: JobCharge) -> None:
    """A one-statement settlement with this charge committed."""
    for listener in _charge_listeners():
        if listener.after_commit is not None:
            listener.after_commit(charge.job.tenant_id)


def job_failed(job: "SynthesisJob") -> None:
    for listener in list(_failed):
        listener(job)
