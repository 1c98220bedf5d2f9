# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DECISIONS := {split: proceed, merge: proceed, commit: commit}

.PHONY: install browser-deps host-deps demo test bench lint

install:  ## the package, its runbook kernel and the test tools
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

browser-deps:  ## Debian's Chromium for the real-browser JupyterLab test
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

host-deps:  ## Debian's iproute2 (ip netns, veth), util-linux (unshare), venv for host://
	@command -v ip >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 && \
	  $(PYTHON) -c "import ensurepip" 2>/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq iproute2 util-linux \
	  python3-venv >/dev/null; }

demo: install  ## an Active Upgrade end to end on the simulator, leaving a report in reports/
	ftkit run active-upgrade -p mode auto -p decisions "$(DECISIONS)" \
	  -p change_id CHG-DEMO-$$(date +%Y%m%d%H%M%S) -p operator "$${USER:-demo}" \
	  -p reason "make demo"
	ftkit reports list

test: install browser-deps host-deps  ## every test: unit, contract, notebooks (papermill), browser
	$(PYTHON) -m pytest

bench: install  ## speed and memory figures (not a test)
	$(PYTHON) benchmarks/bench_sim.py
	$(PYTHON) benchmarks/bench_process.py

lint:  ## ruff (also run by the tests) and mypy over ftkit/
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy
