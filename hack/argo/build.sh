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
# Both are built from the module's source, unpacked from the module cache into the cache
# directory, with two test-peer changes, each said here and in docs/benchmarks.md:
# - argoexec is not buildable from the published module on Linux: the module zip lacks
#   workflow/executor/osspecific's signal_linux.go (only darwin and windows are in it),
#   so our own (hack/argo/signal_linux.go, written for Shoal) is added;
# - the controller's health server (":6060", fixed in its code) and its metrics server
#   (":PORT") would listen on every interface; servers started for tests and benches
#   here listen on loopback only, so both addresses are rewritten to 127.0.0.1.
# The cache key covers the version, our file and this script (the rewrites):
#   ${XDG_CACHE_HOME:-$HOME/.cache}/shoal/argo/<version>-<sha256 of both>/
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

key="$(cat "$here/signal_linux.go" "$here/build.sh" | sha256sum | cut -c1-12)"
out="$cache_root/argo/$ARGO_VERSION-$key"
ldflags="-s -w -X github.com/argoproj/argo-workflows/v4.version=$ARGO_VERSION"

if [[ -x "$out/workflow-controller" && -x "$out/argoexec" && -d "$out/src/manifests" ]]; then
	echo "$out"
	exit 0
fi
# Rewrite FROM to TO in FILE, failing loudly when FROM is not there (a new release moved it).
loopback() {
	local file=$1 from=$2 to=$3
	grep -qF -- "$from" "$file" || { log "$file: '$from' not found; check the loopback rewrite"; exit 1; }
	FROM="$from" TO="$to" perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "$file"
}

mkdir -p "$out"
exec 9>"$out.lock"
flock 9

if [[ ! -d "$out/src/manifests" ]]; then
	(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download "$ARGO_MODULE@$ARGO_VERSION")
	zip="$(go env GOMODCACHE)/cache/download/$ARGO_MODULE/@v/$ARGO_VERSION.zip"
	rm -rf "$out/src" "$out/src.tmp"
	mkdir -p "$out/src.tmp"
	# The zip holds one top-level directory, <module>@<version>/.
	(cd "$out/src.tmp" && unzip -q "$zip")
	src="$out/src.tmp/$ARGO_MODULE@$ARGO_VERSION"
	chmod -R u+w "$src"
	cp "$here/signal_linux.go" "$src/workflow/executor/osspecific/signal_linux.go"
	loopback "$src/cmd/workflow-controller/main.go" 'ListenAndServe(":6060"' 'ListenAndServe("127.0.0.1:6060"'
	loopback "$src/util/telemetry/exporter_prometheus.go" 'fmt.Sprintf(":%v", m.config.port())' 'fmt.Sprintf("127.0.0.1:%v", m.config.port())'
	mv "$src" "$out/src" # complete, or not there at all
	rm -rf "$out/src.tmp"
fi

if [[ ! -x "$out/workflow-controller" ]]; then
	start=$SECONDS
	log "building workflow-controller from $out/src (servers on loopback; a cold build takes 10-20 minutes)"
	(cd "$out/src" && go build -trimpath -ldflags="$ldflags" -o "$out/workflow-controller.tmp" ./cmd/workflow-controller)
	mv "$out/workflow-controller.tmp" "$out/workflow-controller"
	log "built in $((SECONDS - start))s"
fi

if [[ ! -x "$out/argoexec" ]]; then
	start=$SECONDS
	log "building argoexec from $out/src (with hack/argo/signal_linux.go)"
	(cd "$out/src" && go build -trimpath -ldflags="$ldflags" -o "$out/argoexec.tmp" ./cmd/argoexec)
	mv "$out/argoexec.tmp" "$out/argoexec"
	log "built in $((SECONDS - start))s"
fi
echo "$out"
