"""The suite's own process handling: what a test starts ends with it, forked children included.

A Dramatiq main process forks its workers, and a worker may ignore SIGTERM while it drains
(for up to its shutdown timeout) or outlive a parent that was killed. These stand-ins do both.
"""

import sys
import time

from tests import helpers
from tests.helpers import group_members, kill_left_behind, start_process, stop

# The parent forks a child that ignores SIGTERM; both sleep. With "exit", the parent leaves
# at once, so the child is an orphan as a worker whose main process was killed would be.
_FORKING = """
import os, signal, sys, time
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)
elif sys.argv[1] == "exit":
    sys.exit(0)
else:
    time.sleep(600)
"""


def _started(mode: str, members: int):
    process = start_process([sys.executable, "-c", _FORKING, mode])
    deadline = time.monotonic() + 20
    while len(group_members(process.pid)) != members or (mode == "exit" and process.poll() is None):
        assert time.monotonic() < deadline, "the stand-in did not start"
        time.sleep(0.05)
    return process


def test_stop_ends_a_child_that_ignores_sigterm():
    process = _started("stay", members=2)

    stop(process, timeout=1)

    assert group_members(process.pid) == []


def test_stop_ends_an_orphaned_child():
    process = _started("exit", members=1)

    stop(process, timeout=1)

    assert group_members(process.pid) == []


def test_kill_left_behind_names_and_ends_what_a_test_did_not_stop(monkeypatch):
    monkeypatch.setattr(helpers, "STARTED", [])  # Only this test's process, not the session's.
    process = _started("stay", members=2)
    forgotten = group_members(process.pid)

    left = kill_left_behind()

    assert left == {process: forgotten}
    deadline = time.monotonic() + 10
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(process.pid) == []
    process.wait()
