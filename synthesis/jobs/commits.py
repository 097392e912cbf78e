"""How a job's transactions commit: with PARLA_ASYNC_JOB_COMMITS on PostgreSQL, without
waiting for the write-ahead log flush (see job_transaction for what a crash can then lose).

Creating a job runs in a job_transaction(), as do taking and settling it on databases other
than PostgreSQL; a single statement that is its own transaction (PostgreSQL's take and settle,
synthesis.jobs.statements; counting a cache hit) relaxes its own commit with
relaxed_commit_sql().
"""

from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction


def _relaxed() -> bool:
    return connection.vendor == "postgresql" and settings.PARLA_ASYNC_JOB_COMMITS


# Evaluated inside a statement, this makes the statement's transaction commit without waiting
# for the write-ahead log flush (see job_transaction), and nothing after it: a statement run
# on its own is its own transaction, so it needs no BEGIN, SET and COMMIT round trips around it.
_RELAXED_COMMIT = "set_config('synchronous_commit', 'off', true)"


def relaxed_commit_sql() -> str:
    """The expression above with PARLA_ASYNC_JOB_COMMITS on PostgreSQL, else NULL."""
    return _RELAXED_COMMIT if _relaxed() else "NULL"


@contextmanager
def job_transaction():
    """A transaction of a job's lifecycle (create with its hold, take, settle). With
    PARLA_ASYNC_JOB_COMMITS on PostgreSQL its commit does not wait for the write-ahead log to
    reach the disk. A request makes three such commits (create, take, settle); a flush costs
    up to 4 ms on this development machine's disk (back to back) and about 0.5 ms in the
    overhead benchmark, more on network disks.

    What a database crash can lose is the last fraction of a second of such commits, never
    part of one, and each loss is one the system already recovers from: a lost creation
    takes its hold with it (nothing was queued that can run: the worker finds no job); a
    lost take or settlement leaves the job unfinished, so recovery runs it again, and the
    hold is settled (and the usage record written) exactly once."""
    with transaction.atomic():
        if _relaxed():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield
