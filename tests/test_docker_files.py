"""Static checks of docker/: what can be verified without a Docker engine."""

import json
import re
import shlex
from pathlib import Path

import yaml
from django.core.management import get_commands

from config.dramatiq import QUEUES

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
DOCKERFILES = [DOCKER / "Dockerfile", DOCKER / "Dockerfile.gpu"]
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / "parla.env.example"
CHECKED_PREFIXES = ("DJANGO_", "PARLA_", "DATABASE_", "REDIS_", "AWS_", "USE_")
# Variables with these prefixes that config/settings does not read, and why that is right.
NOT_IN_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "read by Django itself (manage.py, config/wsgi.py)",
}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _queues(command: list[str]) -> list[str]:
    return command[command.index("--queues") + 1 :]


def _uncommented(path: Path) -> str:
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def _dockerfile_instructions(path: Path) -> list[str]:
    """One string per instruction: comments dropped, line continuations joined."""
    return [line.strip() for line in _uncommented(path).replace("\\\n", " ").splitlines()]


def test_compose_defines_services_with_healthchecks():
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "worker-cpu", "worker-gpu"} <= set(services)
    for name in ("postgres", "redis", "web"):
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["command"][-2:] == ["migrate", "--noinput"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"

def test_compose_publishes_web_on_loopback_only():
    # No proxy service in the file: web is reached through the host's own proxy, so its port is
    # bound to 127.0.0.1 (a proxy service would make `expose` enough).
    services = _compose()["services"]
    web = services["web"]
    behind_own_proxy = "ports" not in web and "8000" in map(str, web.get("expose", []))
    assert web.get("ports") == ["127.0.0.1:8000:8000"] or behind_own_proxy
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith(("127.0.0.1:", "[::1]:")), (name, port)


def test_compose_app_services_read_env_file():
    services = _compose()["services"]
    for name in ("migrate", "web", "worker-cpu", "worker-gpu"):
        assert services[name]["env_file"] == "parla.env", name


def test_compose_gpu_worker_is_in_gpu_profile_and_consumes_only_gpu_queue():
    services = _compose()["services"]
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert _queues(gpu["command"]) == ["synthesis-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in device["capabilities"] for device in devices)
    in_gpu_profile = [name for name, svc in services.items() if "gpu" in svc.get("profiles", [])]
    assert in_gpu_profile == ["worker-gpu"]


def test_compose_workers_cover_every_queue_once():
    services = _compose()["services"]
    cpu = _queues(services["worker-cpu"]["command"])
    gpu = _queues(services["worker-gpu"]["command"])
    assert cpu == ["synthesis-cpu", "exports", "default"]
    assert sorted(cpu + gpu) == sorted(QUEUES)


def test_dockerfiles_default_worker_cmds_match_compose_queues():
    services = _compose()["services"]
    for path, service in ((DOCKERFILES[0], "worker-cpu"), (DOCKERFILES[1], "worker-gpu")):
        cmds = [json.loads(i[4:]) for i in _dockerfile_instructions(path) if i.startswith("CMD [")]
        cmds = [cmd for cmd in cmds if "rundramatiq" in cmd]
        assert [_queues(cmd) for cmd in cmds] == [_queues(services[service]["command"])], path.name


def test_dockerfiles_copy_sources_exist():
    for path in DOCKERFILES:
        for instruction in _dockerfile_instructions(path):
            if not instruction.startswith("COPY "):
                continue
            args = shlex.split(instruction)[1:]
            if any(arg.startswith("--from=") for arg in args):
                continue
            sources = [arg for arg in args if not arg.startswith("--")][:-1]
            assert sources, instruction
            for source in sources:
                assert (ROOT / source).exists(), f"{path.name}: COPY {source} is missing"


def test_dockerfiles_install_only_from_the_locks():
    for path in DOCKERFILES:
        installs = [i for i in _dockerfile_instructions(path) if "pip install" in i]
        assert installs, path.name
        for instruction in installs:
            for command in instruction.split("&&"):
                if "pip install" not in command:
                    continue
                words = shlex.split(command)
                if "-r" in words:
                    lock = words[words.index("-r") + 1]
                    assert "--require-hashes" in words, (path.name, command)
                    assert (ROOT / lock).exists() and lock.startswith("requirements/"), (path.name, lock)
                else:  # the project itself: its dependencies are all in the lock
                    assert "--no-deps" in words, (path.name, command)


# `python manage.py NAME` as shell words or as a JSON/YAML list ("python", "manage.py", "NAME").
INVOCATION = r"python[\"',]*\s+[\"']?manage\.py[\"',]*\s+[\"']?([a-z_]+)"


def test_docker_manage_py_commands_exist():
    commands = get_commands()
    used = set()
    for path in [*DOCKERFILES, COMPOSE, DOCKER / "README.md"]:
        used |= set(re.findall(INVOCATION, _uncommented(path)))
    assert {"collectstatic", "migrate", "rundramatiq", "createtenant"} <= used
    assert not used - set(commands), f"unknown management commands: {used - set(commands)}"


def test_docker_env_vars_are_read_by_settings():
    settings_text = "".join(p.read_text() for p in (ROOT / "config" / "settings").glob("*.py"))
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    for path in [*DOCKERFILES, COMPOSE]:
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", path.read_text()))
    for instruction in (i for path in DOCKERFILES for i in _dockerfile_instructions(path)):
        if instruction.startswith(("ENV ", "RUN ")):  # ENV and RUN's inline assignments
            names |= set(re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", instruction[4:]))
    checked = {name for name in names if name.startswith(CHECKED_PREFIXES)}
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "USE_S3"} <= checked
    unread = {n for n in checked - set(NOT_IN_SETTINGS) if f'"{n}"' not in settings_text}
    assert not unread, f"not read in config/settings: {sorted(unread)}"
