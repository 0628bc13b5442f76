# Set-up and everyday commands. Everything runs from the project's own .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# `make test` uses PostgreSQL and Redis at their standard local addresses.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/syncapp
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# Scenario B's system tests run two installs, each with a Redis database of its own.
TEST_INSTALL_A_BROKER_URL ?= redis://127.0.0.1:6379/13
TEST_INSTALL_B_BROKER_URL ?= redis://127.0.0.1:6379/14

WEB_PORT ?= 8000
PUBLIC_BASE_URL ?= http://127.0.0.1:$(WEB_PORT)
export WEB_PORT PUBLIC_BASE_URL
# `make run` is for development: a Jira (or the simulator) on this machine over plain http.
RUN_JIRA_ENV := JIRA_ALLOW_HTTP=$${JIRA_ALLOW_HTTP:-true} JIRA_ALLOWED_HOSTS=$${JIRA_ALLOWED_HOSTS:-127.0.0.1,localhost,::1}
# `make run`'s processes count their metrics in VAR_DIR/metrics (emptied at each start).
RUN_METRICS_DIR := $${VAR_DIR:-var}/metrics

.PHONY: install run demo demo-b test lint format clean bench bench-quick bench-drift bench-attachment

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Run the service on its embedded default: SQLite and a filesystem broker, no servers.
run: install
	mkdir -p "$${VAR_DIR:-var}"
	rm -rf "$(RUN_METRICS_DIR)"
	DEBUG=$${DEBUG:-true} $(RUN_JIRA_ENV) $(BIN)/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-true} $(RUN_JIRA_ENV) $(BIN)/python manage.py ensure_admin
	@echo "Service: $(PUBLIC_BASE_URL)/admin/   (Ctrl-C stops web, worker and beat)"
	DEBUG=$${DEBUG:-true} $(RUN_JIRA_ENV) PROMETHEUS_MULTIPROC_DIR="$(RUN_METRICS_DIR)" \
		PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

## Two simulated Jira sites, the service, a worker and beat, and a guided scenario.
demo: install
	$(BIN)/python -m devtools.demo

## Scenario B: two installs (each with its own database, worker and simulated Jira) connected
## by invitation.
demo-b: install
	$(BIN)/python -m devtools.demo_b

## The whole test suite, on PostgreSQL and Redis.
test: install
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) ALLOW_DEV_KEYS=true \
		INSTALL_A_BROKER_URL=$(TEST_INSTALL_A_BROKER_URL) \
		INSTALL_B_BROKER_URL=$(TEST_INSTALL_B_BROKER_URL) \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

## Benchmarks on the deployment configuration (gunicorn, PostgreSQL, Redis, Celery, simulators).
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-quick: install
	$(BIN)/python bench/run.py --quick

## How long a full drift check of 1,000 linked pairs takes, and its Jira calls.
bench-drift: install
	$(BIN)/python bench/drift.py $(BENCH_ARGS)

## A 20 MB attachment copied by a real worker: how much the worker's memory grows.
bench-attachment: install
	$(BIN)/python bench/attachment_memory.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var .pytest_cache .ruff_cache
