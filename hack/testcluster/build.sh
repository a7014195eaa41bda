#!/usr/bin/env bash
# Build (or find in the cache) the test cluster's Go binaries and print the directory
# that holds them on stdout.
#
#   hack/testcluster/build.sh testcluster   # apiserver+controller-manager+scheduler+etcd+kubectl
#   hack/testcluster/build.sh minio         # MinIO, `go install`ed at a pinned version
#   hack/testcluster/build.sh helm          # helm, `go install`ed at a pinned version (chart tests)
#
# The cache lives outside the repository so every clone on a machine shares it:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/shoal/testcluster/<sha256 of go.sum, go.mod, *.go, this script, go version>/
#   ${XDG_CACHE_HOME:-$HOME/.cache}/shoal/minio/<version>/
#   ${XDG_CACHE_HOME:-$HOME/.cache}/shoal/helm/<version>/
# Everything is fetched through the Go module proxy (GOPROXY); nothing else is downloaded.
set -euo pipefail

MINIO_MODULE=github.com/minio/minio
# MinIO's RELEASE.* tags are not semver, so the module proxy serves it by pseudo-version.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
HELM_MODULE=helm.sh/helm/v3/cmd/helm
HELM_VERSION=v3.21.4

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/shoal"
what="${1:-testcluster}"

log() { echo "build.sh: $*" >&2; }

need_go() {
	if ! command -v go >/dev/null 2>&1; then
		log "go is not on PATH; install Go >= 1.26 (the module needs it)"
		exit 1
	fi
}

# Serialise concurrent builds of the same output (parallel make, two checkouts); the
# lock is held until this script exits.
lock() {
	mkdir -p "$1"
	exec 9>"$1.lock"
	flock 9
}

build_testcluster() {
	local key out start version minor ldflags
	need_go
	version="$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$here/go.mod")"
	minor="${version#v1.}"
	minor="${minor%%.*}"
	# What `kubectl version` and the API server's /version report (upstream sets these
	# from git at release time).
	ldflags="-s -w"
	for kv in gitVersion="$version" gitMajor=1 gitMinor="$minor" gitTreeState=clean; do
		ldflags+=" -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
	done
	key="$(cd "$here" && cat go.mod go.sum ./*.go build.sh | cat - <(go env GOVERSION) | sha256sum | cut -c1-16)"
	out="$cache_root/testcluster/$key"
	if [[ ! -x "$out/testcluster" ]]; then
		lock "$out"
		if [[ ! -x "$out/testcluster" ]]; then
			start=$SECONDS
			log "building the control plane (Kubernetes $version) into $out; a cold build takes a while"
			(cd "$here" && go build -trimpath -ldflags="$ldflags" -o "$out/testcluster.tmp" .)
			mv "$out/testcluster.tmp" "$out/testcluster"
			log "built in $((SECONDS - start))s"
		fi
	fi
	ln -sf testcluster "$out/kubectl"
	echo "$out"
}

# go install MODULE@VERSION (with LDFLAGS) into the cache once; print the directory.
go_install_cached() {
	local name=$1 module=$2 version=$3 ldflags=$4 out start
	out="$cache_root/$name/$version"
	if [[ ! -x "$out/$name" ]]; then
		need_go
		lock "$out"
		if [[ ! -x "$out/$name" ]]; then
			start=$SECONDS
			log "go install $module@$version into $out"
			# A scratch module dir keeps the repo's go.work/go.mod (if any) out of it.
			(cd "$(mktemp -d)" && GOBIN="$out" go install -trimpath -ldflags="$ldflags" "$module@$version")
			log "built in $((SECONDS - start))s"
		fi
	fi
	echo "$out"
}

build_minio() {
	go_install_cached minio "$MINIO_MODULE" "$MINIO_VERSION" "-s -w"
}

build_helm() {
	local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
	# As upstream's Makefile does: the Kubernetes version `helm template` and `helm lint`
	# assume (that of the client-go helm is built with, 1.36 for v3.21), not 1.20.
	for pkg in pkg/chartutil pkg/lint/rules; do
		ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=36"
	done
	go_install_cached helm "$HELM_MODULE" "$HELM_VERSION" "$ldflags"
}

case "$what" in
testcluster) build_testcluster ;;
minio) build_minio ;;
helm) build_helm ;;
*)
	log "unknown target $what (testcluster|minio|helm)"
	exit 2
	;;
esac
