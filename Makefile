# Parla: `make run` (embedded mode, no services) and `make test` (the whole suite against
# PostgreSQL and Redis). Both create .venv themselves.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
HOST   ?= 127.0.0.1
# The engines extra needs torch; the CPU build keeps the test environment small. GPU hosts
# install a CUDA build instead (see docker/Dockerfile.gpu).
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: run test install install-test browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,engines]"
	@touch $@ $(VENV)/.installed-run

## The dashboard's browser tests drive Debian's chromium (Playwright never downloads one).
browser:
	@[ -x /usr/bin/chromium ] || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

## Install, migrate, seed the demo tenant (prints its login and API key) and serve.
run: $(VENV)/.installed-run
	$(PY) manage.py serve --setup --host $(HOST) --port $(PORT)

## Install the dev and engines extras and run every test against PostgreSQL and Redis.
test: $(VENV)/.installed-test browser
	DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/parla}" \
	REDIS_URL="$${REDIS_URL:-redis://127.0.0.1:6379/13}" \
	$(PY) -m pytest --create-db $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
