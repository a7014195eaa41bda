#!/usr/bin/env bash
# Build (or find in the cache) Argo Workflows' workflow-controller and argoexec, the
# test peer of bench/vs_argo.py, and print the directory holding them on stdout.
#
#   hack/argo/build.sh
#
# Both come from the Go module proxy at a pinned release (nothing else is downloaded).
# Argo is a TEST PEER here, run on loopback only: the pinned release has published
# security advisories (docs/benchmarks.md).
#
# The controller is `go install`ed as published. argoexec is not buildable from the
# published module on Linux: the module zip lacks workflow/executor/osspecific's
# signal_linux.go (only the darwin and windows variants are in it). So the module's
# source is unpacked from the module cache into the cache directory, our own
# signal_linux.go (hack/argo/signal_linux.go, written for Shoal) is added, and argoexec
# is built inside that copy. The cache key covers the version and our file:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/shoal/argo/<version>-<sha256 of signal_linux.go>/
set -euo pipefail

ARGO_MODULE=github.com/argoproj/argo-workflows/v4
ARGO_VERSION=v4.0.5

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/shoal"

log() { echo "hack/argo/build.sh: $*" >&2; }

if ! command -v go >/dev/null 2>&1; then
	log "go is not on PATH; install Go >= 1.25 (Argo $ARGO_VERSION needs it)"
	exit 1
fi

key="$(sha256sum "$here/signal_linux.go" | cut -c1-12)"
out="$cache_root/argo/$ARGO_VERSION-$key"
ldflags="-s -w -X github.com/argoproj/argo-workflows/v4.version=$ARGO_VERSION"

if [[ -x "$out/workflow-controller" && -x "$out/argoexec" && -d "$out/src/manifests" ]]; then
	echo "$out"
	exit 0
fi
mkdir -p "$out"
exec 9>"$out.lock"
flock 9

if [[ ! -x "$out/workflow-controller" ]]; then
	start=$SECONDS
	log "go install $ARGO_MODULE/cmd/workflow-controller@$ARGO_VERSION into $out (a cold build takes 10-20 minutes)"
	(cd "$(mktemp -d)" && GOBIN="$out" go install -trimpath -ldflags="$ldflags" \
		"$ARGO_MODULE/cmd/workflow-controller@$ARGO_VERSION")
	log "built in $((SECONDS - start))s"
fi

if [[ ! -d "$out/src/manifests" ]]; then
	(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download "$ARGO_MODULE@$ARGO_VERSION")
	zip="$(go env GOMODCACHE)/cache/download/$ARGO_MODULE/@v/$ARGO_VERSION.zip"
	rm -rf "$out/src" "$out/src.tmp"
	mkdir -p "$out/src.tmp"
	# The zip holds one top-level directory, <module>@<version>/.
	(cd "$out/src.tmp" && unzip -q "$zip")
	mv "$out/src.tmp/$ARGO_MODULE@$ARGO_VERSION" "$out/src"
	rm -rf "$out/src.tmp"
	chmod -R u+w "$out/src"
	cp "$here/signal_linux.go" "$out/src/workflow/executor/osspecific/signal_linux.go"
fi

if [[ ! -x "$out/argoexec" ]]; then
	start=$SECONDS
	log "building argoexec from $out/src (with hack/argo/signal_linux.go)"
	(cd "$out/src" && go build -trimpath -ldflags="$ldflags" -o "$out/argoexec.tmp" ./cmd/argoexec)
	mv "$out/argoexec.tmp" "$out/argoexec"
	log "built in $((SECONDS - start))s"
fi
echo "$out"
