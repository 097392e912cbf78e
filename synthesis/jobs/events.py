"""What the job lifecycle announces to the apps above it; they subscribe in AppConfig.ready().

    # analytics/apps.py: the usage ledger
    on_job_charged(lambda charge: usage_record_create(...))
    on_job_failed(lambda job: usage_failure_record(...))
    # batches/apps.py: a batch learns that an item ended
    on_job_finished(lambda job: job.batch_id and batch_item_finished(...))

Synthesis never imports its listeners. Charges and failures are announced inside the
transaction that settles the job, with its row locked, so what a listener writes commits or
rolls back with the settlement: a redelivered message or a recovered job can never bill twice.
"Finished" listeners run after that commit, in the order they registered.
"""

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

    job: "SynthesisJob"  # the locked row, its audio fields as settled
    characters_billed: int
    cached: bool
    processing_seconds: float
    model_version: str
    gpu_seconds: float | None = None
    first: bool = False  # the caller saw the row unfinished: no charge of it can exist yet


_finished: list[Callable[[FinishedJob], None]] = []
_charged: list[Callable[[JobCharge], None]] = []
_failed: list[Callable[["SynthesisJob"], None]] = []


def _register(listeners: list, listener):
    if listener not in listeners:
        listeners.append(listener)
    return listener


def on_job_finished(listener: Callable[[FinishedJob], None]) -> Callable[[FinishedJob], None]:
    """Call `listener` after each job ends (succeeded, failed or cancelled), after commit."""
    return _register(_finished, listener)


def on_job_charged(listener: Callable[[JobCharge], None]) -> Callable[[JobCharge], None]:
    """Call `listener` with each charge, inside the settling transaction."""
    return _register(_charged, listener)


def on_job_failed(listener: Callable[["SynthesisJob"], None]) -> Callable[["SynthesisJob"], None]:
    """Call `listener` with each job that failed, inside the transaction that marks it failed."""
    return _register(_failed, listener)


def job_finished(job: "SynthesisJob") -> None:
    """Announce, after commit, that `job` ended."""
    finished = FinishedJob(tenant_id=job.tenant_id, job_id=job.pk, batch_id=job.batch_id)
    for listener in list(_finished):
        transaction.on_commit(lambda listener=listener: listener(finished))


def job_charged(charge: JobCharge) -> None:
    """Announce a charge. Nobody listening would be work given away: that is an error."""
    if not _charged:
        raise RuntimeError("No usage ledger listens for job charges (is the analytics app installed?).")
    for listener in list(_charged):
        listener(charge)


def job_failed(job: "SynthesisJob") -> None:
    for listener in list(_failed):
        listener(job)
