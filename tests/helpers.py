"""Helpers for tests that run Parla's own processes (the embedded server, real workers)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bare_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: nothing of Parla's configured."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )


# Every process group a test started, so that the session can check none outlives it.
STARTED: list[subprocess.Popen] = []


def start_process(argv: list[str], *, env: dict[str, str] | None = None, log_path: Path | None = None,
                  cwd: Path = ROOT) -> subprocess.Popen:
    """Start a process as the leader of a new process group, and remember it.

    A Dramatiq main process forks its workers; when it dies first they live on, so they are
    stopped by group (see stop()), and the session fails if any of them is still alive at the
    end (tests/conftest.py).
    """
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115  closed by stop()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    process.log_handle = log
    STARTED.append(process)
    return process


def start_manage(*args: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    return start_process([sys.executable, "manage.py", *args], env=env, log_path=log_path)


def wait_for_http(url: str, *, process: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited early:\n{log_path.read_text()}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.25)
    raise AssertionError(f"{url} did not answer in {timeout}s:\n{log_path.read_text()}")


def group_members(pgid: int) -> list[int]:
    """The live processes (zombies are dead) of process group `pgid`."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # The fields after the command: state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a process started by start_process() and every process of its group.

    SIGTERM to the leader first (a worker drains), then SIGKILL to the whole group after
    `timeout` seconds: a forked worker may wait up to its shutdown timeout (ten minutes by
    default) or may have lost its parent already.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 5  # A leader that drained may leave children finishing too.
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    deadline = time.monotonic() + 10  # SIGKILL is delivered, not instant.
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.log_handle is not subprocess.DEVNULL:
        process.log_handle.close()


def kill_left_behind() -> dict[subprocess.Popen, list[int]]:
    """Kill every process group started by start_process() that still has a live process.

    Returns those groups with the pids that were alive, for the session to report as a failure.
    """
    left = {process: members for process in STARTED if (members := group_members(process.pid))}
    for process in left:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def signed_in_client(membership):
    """A Django test client signed in as the membership's user (its tenant is the session's)."""
    from django.test import Client

    client = Client()
    client.force_login(membership.user)
    return client
