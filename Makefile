# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint bench snippet clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: start the server with the example rules and the demo shop on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/touchpoint serve --demo

## check: validate the rules files
check: $(STAMP)
	$(BIN)/touchpoint check

snippet/node_modules/.package-lock.json: snippet/package.json snippet/package-lock.json
	cd snippet && npm ci --no-audit --no-fund --ignore-scripts

## snippet: rebuild server/assets/t.js from snippet/src/
snippet: snippet/node_modules/.package-lock.json
	cd snippet && node build.mjs

## lint: type-check and lint the server package
lint: $(STAMP)
	$(BIN)/ruff check server tests
	$(BIN)/mypy

## test: the whole suite, browser tests included (needs /usr/bin/chromium; .ci/run installs it)
test: $(STAMP) snippet/node_modules/.package-lock.json lint
	$(BIN)/pytest

## bench: one decision's cost with 20, 200 and 2,000 campaigns against GrowthBook's SDK, then
## throughput and latency of /tp/v1/decide and /tp/v1/events against a bare Starlette route,
## the bytes per stored event and the snippet's size, as JSON lines
bench: $(STAMP) snippet/node_modules/.package-lock.json
	$(BIN)/python -c 'import growthbook' 2>/dev/null || $(BIN)/pip install --quiet -e '.[test,bench]'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python tests/bench/rules_bench.py
	$(BIN)/python tests/bench/bench.py

clean:
	rm -rf $(VENV) snippet/node_modules .pytest_cache .mypy_cache
