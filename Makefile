# The single entry point: the README, CI and developers run these same targets.
# `make test` on a fresh clone creates .venv, installs the pinned dependencies and runs the suite.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

# Prefect keeps its local database (the demo's runs, the UI's data) inside the project.
export PREFECT_HOME ?= $(CURDIR)/var/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.DEFAULT_GOAL := help
.PHONY: help install demo ui serve serve-scaled stop test lint format check lock clean emulator samples bench bench-ocr bench-polling bench-polling-live bench-rate bench-overhead bench-scale bench-100k bench-latency ui-shots

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ocrflow needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt -e '.[dev,emulator,scale]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned dependencies

$(PREFECT_HOME):
	@mkdir -p $@

demo: $(STAMP) | $(PREFECT_HOME)  ## the main job offline: emulator + Prefect + SQLite on the samples
	$(BIN)/ocrflow demo

ui: $(STAMP) | $(PREFECT_HOME)  ## the Prefect UI (and API) on http://127.0.0.1:4200, showing the demo's runs
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

serve: $(STAMP)  ## the stack: Prefect server, emulator, deployments, worker (WEBHOOK_URL=… for alerts)
	$(BIN)/ocrflow serve $(if $(WEBHOOK_URL),--webhook-url $(WEBHOOK_URL))

# Scale-out: the Prefect server and the ledger on PostgreSQL (databases created when missing),
# the server's messaging in Redis, SHARD_WORKERS workers for the sharded sweep.
POSTGRES      ?= postgresql+asyncpg://postgres@127.0.0.1:5432
REDIS_URL     ?= redis://127.0.0.1:6379/0
SHARD_WORKERS ?= 2

serve-scaled: $(STAMP)  ## the stack scaled out: PostgreSQL, Redis, SHARD_WORKERS=2 shard workers
	OCRFLOW_LEDGER_URL=$(or $(OCRFLOW_LEDGER_URL),$(POSTGRES)/ocrflow_ledger) $(BIN)/ocrflow serve \
	  --server-database-url $(POSTGRES)/ocrflow_prefect --redis-url $(REDIS_URL) \
	  --shard-workers $(SHARD_WORKERS) $(if $(WEBHOOK_URL),--webhook-url $(WEBHOOK_URL))

stop: $(STAMP)  ## stop the stack started by `make serve`
	$(BIN)/ocrflow stop

test: $(STAMP) | $(PREFECT_HOME)  ## run the whole test suite
	$(BIN)/python -m tests.halves $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: lint test  ## everything CI runs

emulator: $(STAMP)  ## serve the local Aspose.OCR Cloud emulator on 127.0.0.1:8080 (PORT=…)
	$(BIN)/python -m ocrflow.emulator --host 127.0.0.1 --port $(or $(PORT),8080)

samples: $(STAMP)  ## redraw the sample documents in samples/
	$(BIN)/python -m ocrflow.emulator.samples --out samples

bench-ocr: $(STAMP) | $(PREFECT_HOME)  ## the emulator's OCR: exact reads with binarization off and on, time per region and page
	$(BIN)/python -m bench.ocr_speed

bench-polling: $(STAMP) | $(PREFECT_HOME)  ## calls per job against detection lag, ocrflow's policies and the usual ones
	$(BIN)/python -m bench.polling

bench-polling-live: $(STAMP) | $(PREFECT_HOME)  ## the learned polling through flow, client and emulator, beside the virtual clock
	$(BIN)/python -m bench.polling_live

bench-rate: $(STAMP) | $(PREFECT_HOME)  ## a shared request budget against a rate-limited service
	$(BIN)/python -m bench.rate_budget

bench-overhead: $(STAMP) | $(PREFECT_HOME)  ## the flow against the bare client on 1,000 completed jobs; peak RSS at 10,000
	$(BIN)/python -m bench.overhead

bench-scale: $(STAMP) | $(PREFECT_HOME)  ## the sharded sweep with one shard worker against two (PostgreSQL stack)
	$(BIN)/python -m bench.scale_out

bench-100k: $(STAMP) | $(PREFECT_HOME)  ## 100,000 jobs on the PostgreSQL ledger: one sweep, two workers; the retention-aware order
	$(BIN)/python -m bench.sweep_100k

bench-latency: $(STAMP) | $(PREFECT_HOME)  ## one image from a terminal: ocrflow's commands beside the vendor SDK
	$(BIN)/python -m bench.cli_latency

ui-shots: $(STAMP)  ## screenshots of the runs in the Prefect UI (headless Chromium) into docs/img
	@command -v chromium >/dev/null || apt-get install -y -q chromium
	$(BIN)/python -m tools.ui_screenshots

bench: bench-polling bench-polling-live bench-rate bench-ocr bench-overhead bench-scale bench-100k bench-latency  ## every benchmark (about 85 min)

lock:  ## re-resolve dependencies into constraints.txt (run after editing pyproject.toml)
	rm -rf $(VENV).lock
	$(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/python -m pip --disable-pip-version-check -q install '.[dev,emulator,scale]'
	{ echo '# Pinned versions for a reproducible install: regenerate with `make lock`.'; \
	  $(VENV).lock/bin/python -m pip freeze --all --exclude ocrflow --exclude pip; } > constraints.txt
	rm -rf $(VENV).lock build

clean:  ## remove the virtual environment, caches and var/ (ledger, results, Prefect's data)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info var
