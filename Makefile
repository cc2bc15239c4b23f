# AI Chat Gateway — `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(abspath $(VENV))/bin/python
BIN := $(abspath $(VENV))/bin
TEST_POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help lock upgrade run demo bench test-compat bench-scale bench-limits bench-stats soak mock-upstream test lint format migrate bootstrap reset-password rebuild-stats frontend dev e2e-browser \
        docs bytecode test-fast test-backend test-backend-sqlite test-backend-postgres test-frontend test-e2e clean

help:
	@echo "make run          install, build, migrate and start the server (http://127.0.0.1:8000)"
	@echo "make test         install test tools and run every suite (lint, backend on SQLite and PostgreSQL, frontend, browser)"
	@echo "make test-fast    backend tests without live servers, and frontend unit tests (the inner loop)"
	@echo "make dev          API + Vite dev server with hot reload (http://127.0.0.1:5173)"
	@echo "make demo         the gateway with a built-in mock upstream (no provider account needed)"
	@echo "make mock-upstream PORT=9100   the OpenAI-compatible mock upstream on its own"
	@echo "make migrate      apply database migrations"
	@echo "make reset-password ACCOUNT=admin  set a new (printed) password for an account"
	@echo "make rebuild-stats  recompute the dashboard's daily statistics from the call logs (REPRICE=1: costs too)"
	@echo "make bench        benchmarks (QUICK=1 for a short run); make bench-limits: blacklist + limits only"
	@echo "make test-compat  real clients through the gateway to LiteLLM's proxy (not part of make test)"
	@echo "make bench-stats  call logs, dashboard and CSV export with 2,000,000 rows (ROWS=… to change)"
	@echo "make soak         30 minutes of mixed traffic with random upstream faults (MINUTES=… to change)"
	@echo "make format       format the backend code"
	@echo "make lock         refresh backend/uv.lock after changing backend/pyproject.toml"
	@echo "make upgrade      upgrade every locked Python dependency (PACKAGE=name for one)"

# Python dependencies come from backend/uv.lock (exact versions, hashes for every file). uv, itself
# installed by pip from a hash-checked requirements file, syncs .venv to the lock; `--locked` stops
# with a message when pyproject.toml was changed without refreshing the lock (`make lock`).
TOOLS := $(abspath .tools)
UV := $(TOOLS)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# backend/ on the environment's import path, as an editable install would put it: `.venv/bin/python
# -m app …` works from any directory, and nothing has to be built to install the project.
define put_backend_on_path
	$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "ai_chat_gateway.pth").write_text("$(abspath backend)\n")'
endef

$(UV): backend/bootstrap/requirements-uv.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --require-hashes -r backend/bootstrap/requirements-uv.txt
	@touch $@

$(VENV)/.runtime-installed: backend/pyproject.toml backend/uv.lock | $(UV)
	cd backend && $(UV) sync --quiet --locked --compile-bytecode --no-dev --inexact
	$(put_backend_on_path)
	@touch $@

$(VENV)/.dev-installed: backend/pyproject.toml backend/uv.lock | $(UV)
	cd backend && $(UV) sync --quiet --locked --compile-bytecode
	$(put_backend_on_path)
	@touch $@ $(VENV)/.runtime-installed

# After changing dependencies in backend/pyproject.toml: resolve what changed, keep every other pin.
lock: $(UV)
	cd backend && $(UV) lock

# Every dependency to the newest release pyproject.toml allows (PACKAGE=name for one only).
upgrade: $(UV)
	cd backend && $(UV) lock $(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)

# The Vue SPA, built by Vite into backend/app/frontend/ (served by the same process).
FRONTEND_STAMP := frontend/node_modules/.installed
$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

frontend: $(FRONTEND_STAMP)
	cd frontend && npm run build

# Development: the API on :8000 and Vite's dev server (hot reload, proxying /api and /v1) on :5173.
dev: $(VENV)/.runtime-installed $(FRONTEND_STAMP)
	@echo "SPA with hot reload: http://127.0.0.1:5173  (API: http://127.0.0.1:8000)"
	cd frontend && npm run dev -- --host 127.0.0.1 & $(PY) -m app serve

# WORKERS=4 starts four worker processes (needs REDIS_URL).
run: $(VENV)/.runtime-installed frontend
	$(if $(WORKERS),WORKERS=$(WORKERS)) $(PY) -m app serve

# The gateway with the built-in mock upstream as its channel: streaming answers, no provider account.
demo: $(VENV)/.runtime-installed frontend
	DATA_DIR=$${DATA_DIR:-data-demo} $(PY) -m app demo --mock-port $${MOCK_PORT:-9100}

# The mock upstream on its own (an OpenAI-compatible fake; see app/devtools/mock_upstream.py).
mock-upstream: $(VENV)/.runtime-installed
	$(PY) -m app.devtools.mock_upstream --port $${PORT:-9100}

# Benchmark: direct vs a minimal aiohttp proxy vs the gateway (see bench/run.py). QUICK=1 for a short run.
bench: $(VENV)/.runtime-installed
	$(PY) bench/run.py $(if $(QUICK),--quick)
	$(MAKE) bench-limits

# Call logs at scale: 2,000,000 rows on SQLite and PostgreSQL, then dashboard, pages, CSV (ROWS=…).
bench-stats: $(VENV)/.runtime-installed
	$(PY) bench/stats_bench.py $(if $(ROWS),--rows $(ROWS))

# Soak: 30 minutes of mixed traffic with upstream faults injected at random (MINUTES=…, DATABASE=…).
soak: $(VENV)/.runtime-installed
	$(PY) bench/soak.py --minutes $${MINUTES:-30} $(if $(DATABASE),--database $(DATABASE))

# Workers: CPU per call and per chunk with WORKERS=1,2 (N="1 2 4 8" on a bigger machine), and
# call-log rows against calls made on one SQLite file.
bench-scale: $(VENV)/.runtime-installed
	$(PY) bench/scale.py --workers $(or $(N),1 2)

bench-limits: $(VENV)/.runtime-installed
	taskset -c 0 $(PY) bench/guard_bench.py --redis $(TEST_REDIS_URL)

migrate: $(VENV)/.runtime-installed
	$(PY) -m app migrate

bootstrap: $(VENV)/.runtime-installed
	$(PY) -m app bootstrap

rebuild-stats: $(VENV)/.runtime-installed
	$(PY) -m app rebuild-stats $(if $(REPRICE),--reprice)

reset-password: $(VENV)/.runtime-installed
	@test -n "$(ACCOUNT)" || (echo "usage: make reset-password ACCOUNT=<username>"; exit 2)
	$(PY) -m app reset-password "$(ACCOUNT)"

lint: $(VENV)/.dev-installed
	cd backend && $(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/lint-imports --no-cache

format: $(VENV)/.dev-installed
	cd backend && $(BIN)/ruff check --fix . && $(BIN)/ruff format .

# Compiled bytecode for the app and the tests, written here because Python may be told not to
# (PYTHONDONTWRITEBYTECODE): without it every test process and server the tests start compiles
# every module again, about 2 s each (installed packages are compiled by `uv sync`).
bytecode: $(VENV)/.dev-installed
	cd backend && $(PY) -m compileall -q app tests > /dev/null

# Backend tests run in PYTEST_WORKERS processes (pytest-xdist), each with its own database; two
# were measured fastest on a two-core machine (docs/development.md, Testing). `-n 0` runs them in this process.
PYTEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(PYTEST_WORKERS)

test-backend-sqlite: bytecode
	cd backend && TEST_REDIS_URL=$(TEST_REDIS_URL) $(PYTEST)

# PostgreSQL takes the tests that reach a database (marked `db` from their fixtures); pure logic
# already ran on SQLite.
test-backend-postgres: bytecode
	cd backend && TEST_DATABASE_URL=$(TEST_POSTGRES_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(PYTEST) -m db

test-backend: test-backend-sqlite test-backend-postgres

# The inner loop: backend tests without a server on a socket or server processes, and the frontend
# unit tests. No browser, no PostgreSQL.
test-fast: bytecode $(FRONTEND_STAMP)
	cd backend && TEST_REDIS_URL=$(TEST_REDIS_URL) $(PYTEST) -m "not live"
	cd frontend && npm test

test-frontend: $(FRONTEND_STAMP) $(VENV)/.dev-installed
	cd frontend && npm run check:api && npm run typecheck && npm test

# The API reference (docs/api.md) and the SPA's API types, from the backend's OpenAPI document.
docs: $(VENV)/.dev-installed $(FRONTEND_STAMP)
	cd backend && DATA_DIR=$${DATA_DIR:-/tmp/acgw-openapi} $(PY) -m app.devtools.api_reference ../docs/api.md
	cd frontend && npm run gen:api

# Debian's Chromium, and fonts for Chinese text and emoji in the screenshots (installed if missing).
e2e-browser:
	@if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null)); \
	  else echo "e2e: install chromium fonts-noto-cjk fonts-noto-color-emoji (apt-get)"; exit 1; fi; \
	fi

# The browser end-to-end suite: the real server and the mock upstream, driven in Chromium.
# Real clients through the gateway to LiteLLM's proxy (a second upstream implementation) in front
# of the mock; LiteLLM comes from compat/requirements.txt (hashed) into .venv-compat. Not in `make test`.
test-compat: $(VENV)/.dev-installed $(UV)
	test -x .venv-compat/bin/python || $(UV) venv -q -p 3.11 .venv-compat
	$(UV) pip install --quiet --require-hashes --python .venv-compat/bin/python -r compat/requirements.txt
	$(PY) compat/run.py

test-e2e: bytecode frontend e2e-browser
	cd frontend && npm run test:e2e

# Every suite runs even when an earlier one fails (a failure must not hide the others); the run
# fails if any did, and ends with each suite's time and result.
TEST_SUITES := lint test-backend-sqlite test-backend-postgres test-frontend test-e2e
test:
	@failed=""; summary=""; \
	for suite in $(TEST_SUITES); do \
	  start=$$(date +%s); \
	  if $(MAKE) --no-print-directory $$suite; then result=passed; else result=FAILED; failed="$$failed $$suite"; fi; \
	  summary="$$summary$$(printf '\n  %-24s %-7s %4ss' $$suite $$result $$(( $$(date +%s) - start )))"; \
	done; \
	echo "make test:$$summary"; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) $(TOOLS) backend/.pytest_cache backend/.mypy_cache backend/.ruff_cache
