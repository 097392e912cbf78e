"""`make test` stops with a clear message when PostgreSQL or Redis is unreachable."""

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.parametrize(
    ("variable", "url", "message"),
    [
        ("REDIS_URL", "redis://127.0.0.1:1/0", "Redis is not reachable"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/parla", "PostgreSQL is not reachable"),
    ],
)
def test_suite_stops_with_a_clear_message_when_a_service_is_down(variable, url, message):
    env = {**os.environ, variable: url}

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_errors.py", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 3
    assert message in result.stdout + result.stderr
