# islandhub: make demo | make test | make bench | make lint
# Every target builds .venv from the lock file first, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint lock clean soak

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/islandhub demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every benchmark, then one table of them all (benchmarks/results/bench-<date>.json). A
# benchmark that fails does not stop the others (the `-`): the table shows its figures missing.
bench: $(STAMP)
	$(BIN)/python benchmarks/summary.py --start
	-$(BIN)/python benchmarks/ingest.py
	-$(BIN)/python benchmarks/rest_pull.py
	-$(BIN)/python benchmarks/dag_parse.py
	-$(BIN)/python benchmarks/api_load.py
	-$(BIN)/python benchmarks/quality.py
	-$(BIN)/python benchmarks/resolution.py
	-$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/summary.py

# The crash trials of `make test` (tests/crash), many more of them: 25 per connector kind and
# store backend, 200 syncs killed with SIGKILL and run again (docs/testing.md).
soak: $(STAMP)
	ISLANDHUB_CRASH_TRIALS=25 $(BIN)/python -m pytest -q tests/crash

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check islandhub connectors
	$(BIN)/mypy

# Re-resolve the pinned dependency set after changing pyproject.toml's dependencies.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf $(VENV) var

# The production profile on loopback (docs/operations.md, "Production profile"): Airflow on
# PostgreSQL, CeleryExecutor with Redis. A local PostgreSQL or Redis that is down is started.
.PHONY: production production-down
production: $(STAMP)
	@pg_isready -h 127.0.0.1 -p 5432 -q || \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	$(BIN)/python -m islandhub.production up

production-down: $(STAMP)
	$(BIN)/python -m islandhub.production down
