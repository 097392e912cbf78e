import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _production_env(**overrides) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "parla.example.com",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_deploy_check():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("missing", "message"),
    [("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY"), ("DATABASE_URL", "DATABASE_URL"), ("REDIS_URL", "REDIS_URL")],
)
def test_production_settings_fail_fast_without_required_variables(missing, message):
    result = _manage("check", env=_production_env(**{missing: None}))

    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings_refuse_debug():
    result = _manage("check", env=_production_env(DJANGO_DEBUG="true"))

    assert result.returncode != 0
    assert "DJANGO_DEBUG must be off" in result.stderr


def _example_secret_keys() -> list[str]:
    """Every DJANGO_SECRET_KEY value in the committed example files, commented out or not."""
    import re

    keys = []
    for path in (ROOT / ".env.example", ROOT / "docker" / "parla.env.example"):
        keys += re.findall(r"^#?\s*DJANGO_SECRET_KEY=(\S+)", path.read_text(), re.M)
    return keys


def test_example_files_have_secret_keys_to_refuse():
    assert len(_example_secret_keys()) >= 2


@pytest.mark.parametrize("example_key", _example_secret_keys())
def test_production_settings_refuse_the_example_secret_keys(example_key):
    result = _manage("check", env=_production_env(DJANGO_SECRET_KEY=example_key))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY is the example value" in result.stderr


def test_readme_documents_every_environment_variable_the_settings_read():
    import re

    sources = "".join(p.read_text() for p in [*(ROOT / "config" / "settings").glob("*.py"), ROOT / "config" / "env.py"])
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', sources))
    readme = (ROOT / "README.md").read_text()

    assert len(read) > 20
    assert sorted(name for name in read if f"`{name}`" not in readme) == []


@pytest.mark.parametrize("configured, expected", [(None, 1000), ("40", 40)])
def test_worker_processes_inherit_the_idle_poll_ceiling(configured, expected):
    # The worker command execs Dramatiq's CLI after loading the settings; its processes read
    # dramatiq_worker_timeout from the environment they inherit.
    env = _production_env(PARLA_WORKER_POLL_MS=configured, dramatiq_worker_timeout=None)
    env.pop("dramatiq_worker_timeout", None)
    script = (
        "import django, os, subprocess, sys; django.setup(); "
        "sys.stdout.write(subprocess.run([sys.executable, '-c', "
        "'import dramatiq.worker as w; print(w.WORKER_TIMEOUT)'], capture_output=True, text=True).stdout)"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)

    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) == expected
