# Parla: `make run` (embedded mode, no services) and `make test` (the whole suite against
# PostgreSQL and Redis). Both create .venv themselves.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
HOST   ?= 127.0.0.1
# Installs come from the lock files in requirements/ (hashes checked), never from the open
# ranges in pyproject.toml: `make lock` turns those ranges into the lock files. The test lock
# pins the CPU build of torch; GPU hosts install a CUDA build (docker/Dockerfile.gpu).
PIP_VERSION ?= 25.3
PIP_INSTALL = $(PY) -m pip install --quiet --require-hashes --no-deps
PYTEST_ARGS ?=

.PHONY: run test lint install install-test install-bench browser clean lock

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==$(PIP_VERSION)"

$(VENV)/.installed-run: requirements/run.txt pyproject.toml | $(PY)
	$(PIP_INSTALL) -r requirements/run.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-test
	@touch $@

$(VENV)/.installed-test: requirements/test.txt pyproject.toml | $(PY)
	$(PIP_INSTALL) -r requirements/test.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@ $(VENV)/.installed-run

## The dashboard's browser tests drive Debian's chromium (Playwright never downloads one).
browser:
	@[ -x /usr/bin/chromium ] || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

## The benchmarks' tools (bench extra) on top of the test environment, same versions.
$(VENV)/.installed-bench: requirements/bench.txt $(VENV)/.installed-test
	$(PIP_INSTALL) -r requirements/bench.txt
	@touch $@

install-bench: $(VENV)/.installed-bench
install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

## Install, migrate, seed the demo tenant (prints its login and API key) and serve.
run: $(VENV)/.installed-run
	$(PY) manage.py serve --setup --host $(HOST) --port $(PORT)

## The apps' import layers (import-linter, contracts in pyproject.toml) and ruff.
lint: $(VENV)/.installed-test
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

## Install the dev and engines extras, lint, and run every test against PostgreSQL and Redis.
test: $(VENV)/.installed-test browser lint
	DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/parla}" \
	REDIS_URL="$${REDIS_URL:-redis://127.0.0.1:6379/13}" \
	$(PY) -m pytest --create-db $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var

## Regenerate the lock files in requirements/ from pyproject.toml and requirements/*.in.
## Kept pins stay; UPGRADE=1 moves every package to the newest version the ranges allow.
LOCK_VENV ?= .venv-lock
PIP_TOOLS_SPEC ?= pip==25.3 pip-tools==7.5.2
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	$(if $(UPGRADE),--upgrade)

$(LOCK_VENV)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS_SPEC)

lock: $(LOCK_VENV)/bin/pip-compile
	$(PIP_COMPILE) --extra dev --extra engines -o requirements/test.txt \
	    pyproject.toml requirements/torch-cpu.in
	$(PIP_COMPILE) -o requirements/run.txt pyproject.toml requirements/run.in
	$(PIP_COMPILE) --extra dev --extra engines --extra bench -o requirements/bench.txt \
	    pyproject.toml requirements/bench.in
	$(PIP_COMPILE) --extra s3 -o requirements/docker.txt pyproject.toml requirements/docker.in
	@# PyPI's CUDA build of torch, not a local CPU wheel: no local wheel folder or index.
	env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(PIP_COMPILE) --extra engines --extra s3 \
	    -o requirements/docker-gpu.txt pyproject.toml requirements/torch-gpu.in
