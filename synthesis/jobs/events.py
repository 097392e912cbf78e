"""What the job lifecycle announces to the apps above it (batches learn that an item ended).

    # batches/apps.py
    on_job_finished(lambda job: job.batch_id and batch_item_finished(...))

Listeners run after the commit that ended the job, in the order they registered.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction


@dataclass(frozen=True)
class FinishedJob:
    tenant_id: int
    job_id: int
    batch_id: int | None


_finished: list[Callable[[FinishedJob], None]] = []


def on_job_finished(listener: Callable[[FinishedJob], None]) -> Callable[[FinishedJob], None]:
    """Call `listener` after each job ends (succeeded, failed or cancelled)."""
    if listener not in _finished:
        _finished.append(listener)
    return listener


def job_finished(job) -> None:
    """Announce, after commit, that `job` ended."""
    finished = FinishedJob(tenant_id=job.tenant_id, job_id=job.pk, batch_id=job.batch_id)
    for listener in list(_finished):
        transaction.on_commit(lambda listener=listener: listener(finished))
