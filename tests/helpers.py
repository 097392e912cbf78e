"""Helpers for tests that run Parla's own processes (the embedded server, real workers)."""

import os
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


def start_manage(*args: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115  closed with the process by stop()
    return subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )


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


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def signed_in_client(membership):
    """A Django test client signed in as the membership's user (its tenant is the session's)."""
    from django.test import Client

    client = Client()
    client.force_login(membership.user)
    return client
