#!/usr/bin/env bash
# Shoal on a local kind cluster, for users with Docker and kind (and kubectl, helm).
#
#   hack/kind-up.sh      # cluster, images, MinIO + PostgreSQL, the chart, an example
#   hack/kind-down.sh    # delete it all
#
# NOT RUN in this project's CI or test machines: they have no Docker engine and no image
# registry, so kind cannot run there. What is checked there is `bash -n` of this script
# (tests/unit/test_kind_scripts.py); the chart itself is linted, rendered and applied
# against the test control plane (tests/cluster/test_chart.py). See docs/packaging.md.
set -euo pipefail

CLUSTER="${SHOAL_KIND_CLUSTER:-shoal}"
NAMESPACE="${SHOAL_NAMESPACE:-shoal}"
VERSION="${SHOAL_VERSION:-0.1.0}"
OPERATOR_IMAGE="ghcr.io/shoal-dev/operator:$VERSION"
WORKER_IMAGE="ghcr.io/shoal-dev/worker:$VERSION"
# The worker image plus examples/jobs.py, so the examples' jobs (greet, ...) exist.
EXAMPLES_IMAGE="shoal.local/worker-examples:$VERSION"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

for tool in docker kind kubectl helm; do
	command -v "$tool" >/dev/null || { echo "kind-up.sh: $tool is not on PATH" >&2; exit 1; }
done

log() { echo "==> $*" >&2; }

if kind get clusters | grep -qx "$CLUSTER"; then
	log "kind cluster $CLUSTER exists"
else
	log "creating kind cluster $CLUSTER"
	kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

log "building $OPERATOR_IMAGE and $WORKER_IMAGE"
docker build -f Dockerfile.operator --build-arg VERSION="$VERSION" -t "$OPERATOR_IMAGE" .
docker build -f Dockerfile.worker --build-arg VERSION="$VERSION" -t "$WORKER_IMAGE" .
docker build -t "$EXAMPLES_IMAGE" -f - examples <<DOCKERFILE
FROM $WORKER_IMAGE
COPY jobs.py /opt/examples/jobs.py
ENV PYTHONPATH=/opt/examples SHOAL_IMPORT=jobs
DOCKERFILE

log "loading the images into $CLUSTER"
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$WORKER_IMAGE" "$EXAMPLES_IMAGE"

log "MinIO and PostgreSQL for development (namespace shoal-dev)"
kubectl create namespace shoal-dev --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f hack/dev/
kubectl -n shoal-dev rollout status deployment/minio --timeout=180s
kubectl -n shoal-dev rollout status deployment/postgres --timeout=180s
# The artifact bucket, with the mc client that ships in the MinIO image.
kubectl -n shoal-dev exec deploy/minio -- sh -c \
	'MC_HOST_dev="http://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD@localhost:9000" mc --config-dir /tmp/mc mb --ignore-existing dev/shoal'

log "installing the chart into $NAMESPACE"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NAMESPACE" create secret generic shoal-database \
	--from-literal=url="postgresql://shoal:shoal-dev-only@postgres.shoal-dev.svc:5432/shoal" \
	--dry-run=client -o yaml | kubectl apply -f -
# The operator reads it in $NAMESPACE, and so do worker pods (the watched namespace).
kubectl -n "$NAMESPACE" create secret generic shoal-artifacts \
	--from-literal=accessKeyId=shoal --from-literal=secretAccessKey=shoal-dev-only \
	--dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install shoal helm/shoal --namespace "$NAMESPACE" \
	--set image.tag="$VERSION" \
	--set worker.image="$EXAMPLES_IMAGE" \
	--set archive.existingSecret=shoal-database \
	--set artifacts.url=s3://shoal/runs \
	--set artifacts.endpoint=http://minio.shoal-dev.svc:9000 \
	--set artifacts.existingSecret=shoal-artifacts \
	--wait --timeout 180s

log "running examples/hello.yaml"
sed "s|image: ghcr.io/shoal-dev/worker:.*|image: $EXAMPLES_IMAGE|" examples/hello.yaml |
	kubectl -n "$NAMESPACE" apply -f -
kubectl -n "$NAMESPACE" wait workflow/hello --for=jsonpath='{.status.phase}'=Succeeded --timeout=180s
kubectl -n "$NAMESPACE" get workflows

cat <<EOF

Shoal is running on kind cluster $CLUSTER (namespace $NAMESPACE).
  kubectl -n $NAMESPACE apply -f examples/diamond.yaml   # set spec.image to $EXAMPLES_IMAGE
  shoal get -n $NAMESPACE
  shoal logs -n $NAMESPACE hello
MinIO: http://localhost:9000 (console http://localhost:9001), user shoal, password shoal-dev-only
Tear down: hack/kind-down.sh
EOF
