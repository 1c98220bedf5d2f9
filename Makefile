# The two set-up commands of the README: `make demo` and `make test`.
#
# Everything is installed into a virtual environment: the one already active (VIRTUAL_ENV
# set, or a python3 whose sys.prefix is not its base prefix), else the project's own
# `.venv`, made from $(PYTHON) — so a PEP 668 system Python (Debian, Ubuntu) is never
# pip-installed into. Recipes find that environment's python3 and ftkit first on the PATH.
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(shell date +%Y%m%d%H%M%S)
DECISIONS := {split: proceed, merge: proceed, commit: commit}
# `make test` runs the representative subset (not the `slow` long variants) unless CI is
# set; CI (.ci/run) runs every test. More pytest arguments: make test PYTEST_ARGS="-k cli"
PYTEST_ARGS ?=
PYTEST_SELECT := $(if $(CI),,-m "not slow")

IN_VENV := $(shell $(PYTHON) -c 'import os, sys; print(int(bool(os.environ.get("VIRTUAL_ENV")) or sys.prefix != sys.base_prefix))' 2>/dev/null)
ifeq ($(IN_VENV),1)
BIN := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
PY := $(PYTHON)
VENV_PYTHON :=
WHERE := ftkit is $(BIN)/ftkit (in the active virtual environment)
else
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
VENV_PYTHON := $(BIN)/python3
PY := $(VENV_PYTHON)
WHERE := ftkit is $(BIN)/ftkit: run it from there, or run make shell, or first: . .venv/bin/activate
export VIRTUAL_ENV := $(VENV)
export PATH := $(BIN):$(PATH)

# made from $(PYTHON) as found without .venv on the PATH; Debian keeps ensurepip (which
# venv needs) in python3-venv, installed here the way browser-deps installs Chromium
$(VENV_PYTHON):
	@PATH="$(subst $(BIN):,,$(PATH))" $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "installing Debian's python3-venv (the venv module $(PYTHON) lacks)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv >/dev/null; }
	PATH="$(subst $(BIN):,,$(PATH))" $(PYTHON) -m venv $(VENV)
endif

.PHONY: install venv shell browser-deps host-deps demo test bench lint

venv: $(VENV_PYTHON)  ## the project's virtual environment (.venv), unless one is active

install: venv  ## the package, its runbook kernel and the test tools
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	$(PY) -m ftkit_widgets.labsettings
	@echo "$(WHERE)"

shell: venv  ## a bash with the project's environment active (exit to leave)
ifeq ($(IN_VENV),1)
	@echo "$(WHERE); this shell has it already"
else
	@printf '%s\n' '[ -f ~/.bashrc ] && . ~/.bashrc' '. "$(BIN)/activate"' >"$(VENV)/shellrc"
	@echo "$(WHERE)"; echo "(a bash with .venv active; exit to leave)"
	@exec bash --rcfile "$(VENV)/shellrc" -i
endif

browser-deps:  ## Debian's Chromium for the real-browser JupyterLab test
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

host-deps:  ## Debian's iproute2 (ip netns, veth) and util-linux (unshare) for host://
	@command -v ip >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq iproute2 util-linux \
	  >/dev/null; }

demo: install  ## an Active Upgrade end to end on a new simulated system; its report in reports/
	$(BIN)/ftkit run active-upgrade -p system sim://demo-$(STAMP) -p mode auto \
	  -p decisions "$(DECISIONS)" -p change_id CHG-DEMO-$(STAMP) \
	  -p operator "$${USER:-demo}" -p reason "make demo"
	@echo "every report so far: $(BIN)/ftkit reports list"

test: install browser-deps host-deps  ## the tests: a representative subset, or every test when CI is set
	$(PY) -m pytest $(PYTEST_SELECT) $(PYTEST_ARGS)

bench: install  ## speed, size and memory figures beside their baselines (a report: exits 0)
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/bench_host.py

lint: venv  ## ruff (also run by the tests) and mypy over ftkit/
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(PY) -m ruff check .
	$(PY) -m mypy
