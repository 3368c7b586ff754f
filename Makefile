# The README's two commands: `make run` and `make test`. Both set up what they need first, idempotently.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test lint setup node bench bench-cluster clean

run: setup
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory node; else \
	  echo "warning: npm not found: the dashboard's chart and SockJS libraries are missing (apt-get install nodejs npm)" >&2; fi
	$(PY) stockquest.py $(ARGS)

test: setup node
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

# Browser libraries and the Node test harness come from the npm registry (package-lock.json).
node: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed: apt-get install -y nodejs npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The performance goals, with their baselines in the same run (`make bench ARGS=--quick` for a smoke run).
bench: setup node $(VENV)/.bench-installed
	$(PY) bench/goals.py $(ARGS)

# Fan-out past one process (docs/scaling.md): 1, 2 and 4 gateways against the single process, then Redis's publish
# rates; needs redis-server (`make bench-cluster ARGS=--quick` for a smoke run).
bench-cluster: setup node
	$(PY) bench/cluster_fanout.py $(ARGS)

$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(PY) -m pip install --disable-pip-version-check -q -r bench/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) node_modules .pytest_cache
