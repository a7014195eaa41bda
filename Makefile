# Shoal developer targets. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit test-local test-cluster lint crds crds-check venv clean cluster-up cluster-down bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,operator,s3]'
	@touch $@

## demo: run a real example workflow locally (no cluster needed)
demo: $(STAMP)
	$(BIN)/shoal run --import jobs examples/catalog.yaml

## test: lint, then every test tier
test: lint crds-check test-unit test-local test-cluster

test-unit: $(STAMP)
	$(BIN)/pytest -q -n 2 tests/unit

test-local: $(STAMP)
	$(BIN)/pytest -q -n 2 tests/local

# The cluster tier lives in tests/cluster (control plane, MinIO, PostgreSQL); one process,
# because its fixtures start the control plane once per session.
test-cluster: $(STAMP)
	@if [ -d tests/cluster ]; then $(BIN)/pytest -q tests/cluster; else echo "no cluster tier yet"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## crds: regenerate crds/ from the pydantic models
crds: $(STAMP)
	$(BIN)/python -m shoal.api.crd crds

crds-check: $(STAMP)
	$(BIN)/python -m shoal.api.crd crds --check

bench: $(STAMP)
	$(BIN)/python bench/local.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
