#!/usr/bin/env bash
# Delete the kind cluster hack/kind-up.sh created (and everything in it: the chart,
# MinIO, PostgreSQL and their data). For users with Docker and kind.
#
# NOT RUN in this project's CI or test machines (no Docker engine there); only
# `bash -n` is checked (tests/unit/test_kind_scripts.py). See docs/packaging.md.
set -euo pipefail

CLUSTER="${SHOAL_KIND_CLUSTER:-shoal}"

command -v kind >/dev/null || { echo "kind-down.sh: kind is not on PATH" >&2; exit 1; }
if kind get clusters | grep -qx "$CLUSTER"; then
	kind delete cluster --name "$CLUSTER"
else
	echo "kind-down.sh: no kind cluster named $CLUSTER" >&2
fi
