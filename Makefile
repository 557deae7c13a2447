# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What `make run` installs, and what `make test` adds: pinned with hashes (`make lock`), so a
# fresh machine gets the versions CI tested.
RUN_LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# The second pass of `make test`: every test that reaches a database, on PostgreSQL (the suite's
# own throwaway server, tests/pgcluster.py); the rules, syntax and docs tests read no database,
# and the first pass ran the tests that choose PostgreSQL themselves (test_nodes.py, fresh_db).
PG_TESTS := -m "not slow" --ignore=tests/bench --ignore=tests/rules --ignore=tests/syntax \
	--ignore=tests/test_docs.py --ignore=tests/test_packaging.py --ignore=tests/test_settings.py \
	--ignore=tests/test_nodes.py

.PHONY: run test test-fast check lint bench snippet admin-assets lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): $(BIN)/python pyproject.toml $(RUN_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(RUN_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP) $(TEST_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(TEST_LOCK)
	touch $@

## run: start the server with the example rules and the demo shop on http://127.0.0.1:8000
run: $(RUN_STAMP)
	$(BIN)/touchpoint serve --demo

## check: validate the rules files
check: $(RUN_STAMP)
	$(BIN)/touchpoint check

snippet/node_modules/.package-lock.json: snippet/package.json snippet/package-lock.json
	cd snippet && npm ci --no-audit --no-fund --ignore-scripts

## snippet: rebuild server/assets/t.js from snippet/src/
snippet: snippet/node_modules/.package-lock.json
	cd snippet && node build.mjs

## admin-assets: rebuild the console's charts and editor (server/admin/static/) from snippet/admin/
admin-assets: snippet/node_modules/.package-lock.json
	cd snippet && node admin/build.mjs

## lint: formatting, lint, types, and the layering of server/ (import-linter, pyproject.toml)
lint: $(TEST_STAMP)
	$(BIN)/ruff format --check server tests
	$(BIN)/ruff check server tests
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: the whole suite, browser tests included, on SQLite and then on PostgreSQL (needs
## /usr/bin/chromium and Debian's postgresql; .ci/run installs them)
test: $(TEST_STAMP) snippet/node_modules/.package-lock.json lint
	$(BIN)/pytest
	TOUCHPOINT_TEST_ENGINE=postgresql $(BIN)/pytest $(PG_TESTS)

## test-fast: the suite without the browser and the slow tests, for a quick loop while editing
test-fast: $(TEST_STAMP)
	$(BIN)/pytest -m "not browser and not slow"

## lock: pin the dependencies of pyproject.toml again, with hashes, after changing them
lock: $(BIN)/python
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
		--no-emit-find-links --extra test --output-file $(TEST_LOCK) pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
		--no-emit-find-links --constraint $(TEST_LOCK) --output-file $(RUN_LOCK) pyproject.toml

## bench: one decision's cost with 20, 200 and 2,000 campaigns against GrowthBook's SDK;
## reports over a year of rollups and what rolling up costs a stored event; then /tp/v1/decide
## and /tp/v1/events against the floor route, GrowthBook's SDK and the floor-events route
## (interleaved rounds, p50/p99, server CPU per request), decide at fixed rates (open loop), the
## bytes per stored event, 2 workers against 1, the rate limit across workers and the snippet's
## size, as JSON lines with the goals of issue 19 (BENCH_* variables shorten it: bench.py); then
## decide and events on SQLite, PostgreSQL with one node and three behind nginx (pg_bench.py)
bench: $(TEST_STAMP) snippet/node_modules/.package-lock.json
	$(BIN)/python -c 'import growthbook' 2>/dev/null || $(BIN)/pip install --quiet 'growthbook>=1.0'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -x /usr/sbin/nginx ] \
		|| (apt-get update -qq && apt-get install -y -qq postgresql nginx)
	$(BIN)/python tests/bench/rules_bench.py
	$(BIN)/python tests/bench/results_bench.py
	$(BIN)/python tests/bench/admin_bench.py
	$(BIN)/python tests/bench/admin_rules_bench.py
	$(BIN)/python tests/bench/bench.py
	$(BIN)/python tests/bench/pg_bench.py

clean:
	rm -rf $(VENV) snippet/node_modules .pytest_cache .mypy_cache
