# Strikeline developer commands. Everything installs itself into .venv and node_modules.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# ape-vyper compiles with the vyper on PATH: the virtualenv's must come first.
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export HYPOTHESIS_PROFILE ?= ci
# ape-vyper's settings model leaves `import_remapping` an unresolved forward reference, and
# pydantic-settings warns about it when ape loads its config: noise, silenced for ape's
# commands by exactly its message (docs/deployment.md, "Configuration"). Only there: with any
# PYTHONWARNINGS set, pytest stops showing DeprecationWarnings by default.
APE := PYTHONWARNINGS="ignore:Field 'import_remapping' has an incomplete definition" \
	$(VENV)/bin/ape
# mypy checks the Python packages that exist; libraries without type information (scipy, rlp,
# safe-pysha3) are taken as untyped rather than failing the run
LINT_PACKAGES := $(wildcard strikeline relayer keepers)

.PHONY: install lint test test-unit test-integration fuzz bench soak demo clean

install: .stamps/python .stamps/node

.stamps/python: pyproject.toml
	@mkdir -p .stamps
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

.stamps/node: package.json
	@mkdir -p .stamps
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

## ruff (lint rules and formatting) over the repository, mypy over the packages; .ci/run runs
## it before the tests
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --disable-error-code=import-untyped $(LINT_PACKAGES)
	$(PY) scripts/check_contracts.py

## the whole suite: unit, property, stateful (ci profile), pricing, then ape + anvil integration
test: install test-unit test-integration

test-unit: install
	$(PY) -m pytest tests --ignore=tests/integration -q -n 2 --dist loadfile --durations=15

## ape + anvil: run from the root (ape reads ape-config.yaml there); tests/integration/pytest.ini
## makes that folder its own pytest root so ape's plugin is not blocked by pyproject's addopts
test-integration: install
	$(APE) test tests/integration -q --network ethereum:local:foundry

## the long fuzzing profile (10x the ci examples)
fuzz: install
	HYPOTHESIS_PROFILE=nightly $(PY) -m pytest tests/stateful tests/unit -q -n 2 --dist loadfile

## every benchmarks/bench_*.py in turn (each starts its own anvil node and PostgreSQL database
## and stops them; PostgreSQL must listen on 127.0.0.1:5432); stops at the first that fails
bench: install
	@for b in benchmarks/bench_*.py; do \
		echo "== $$b"; start=$$(date +%s); \
		$(PY) $$b || { echo "== $$b FAILED"; exit 1; }; \
		echo "== $$b: $$(( $$(date +%s) - start )) s"; \
	done

## the relayer's long runs (docs/relayer.md): 100 kill -9 of the relayer under load (50 per
## journal backend) and 100,000 fuzzed API requests plus 100 schemathesis examples per operation
soak: install
	STRIKELINE_TEST_RELAYER_KILLS=50 STRIKELINE_TEST_FUZZ_REQUESTS=100000 STRIKELINE_TEST_FUZZ_EXAMPLES=100 \
		$(PY) -m pytest -q tests/relayer/test_e2e_fuzz.py \
		"tests/relayer/test_e2e_relayer.py::test_kill_9_mid_batch_loses_nothing_and_settles_nothing_twice"

demo: install
	$(PY) scripts/demo.py

clean:
	rm -rf $(VENV) node_modules .stamps .build
