"""The environment the tests run in is the one requirements/test.txt locks.

Open version ranges drift as new releases come out (transformers 5 broke XTTS that way); a
test that names the drifted package is clearer than an engine failing deep inside.
"""

import re
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "test.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def _locked(path: Path) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in _PIN.findall(path.read_text())}


def _installed() -> dict[str, str]:
    # What pip installed into the environment; not the copies that setuptools vendors and puts on
    # sys.path once pkg_resources is imported (older jaraco, packaging, platformdirs...).
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return {canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions(path=paths)}


def test_installed_versions_are_the_locked_ones():
    installed = _installed()

    drifted = {name: (version, installed.get(name, "missing"))
               for name, version in _locked(LOCK).items() if installed.get(name) != version}

    assert drifted == {}, (f"installed packages differ from {LOCK.relative_to(ROOT)} "
                           "(locked, installed); reinstall with `make clean test`")


def test_nothing_is_installed_beside_the_locks():
    # Parla itself is installed from the working tree; pip is the installer, pinned by the
    # Makefile; `make install-bench` adds the benchmarks' tools at their locked versions.
    installed = _installed()
    bench = _locked(ROOT / "requirements" / "bench.txt")
    extra = {name: version for name, version in installed.items()
             if name not in _locked(LOCK) and name not in {"parla", "pip"} and bench.get(name) != version}

    assert extra == {}, f"installed but not in {LOCK.relative_to(ROOT)}"


def test_lock_satisfies_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    locked = _locked(LOCK)

    unmet = []
    for line in project["dependencies"] + extras["dev"] + extras["engines"]:
        requirement = Requirement(line)
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append((line, version))

    assert unmet == [], "pyproject.toml changed without `make lock`"


def test_every_lock_pins_with_hashes():
    for lock in sorted((ROOT / "requirements").glob("*.txt")):
        text = lock.read_text()
        pins = _PIN.findall(text)

        assert pins, lock.name
        assert text.count("--hash=sha256:") >= len(pins), lock.name
