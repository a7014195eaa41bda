"""The Helm chart (helm/shoal): lint, render, apply, and prove its RBAC.

helm is built from its Go module at a pinned version (hack/testcluster/build.sh helm).
The operator's image is never run here: the rendered Deployment names an image under
the `.invalid` domain, which the node agent refuses to "pull", so only the RBAC objects
and the API server's admission of every manifest are exercised.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import binaries
from tests.support.plugin import Kubectl, _prebuilt

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "shoal"
# Never pulled: the node agent treats *.invalid/* as an image that does not exist.
NO_IMAGE = ["--set", "image.repository=registry.invalid/shoal/operator"]


@pytest.fixture(scope="session")
def helm() -> Path:
    path: Path = _prebuilt("helm", binaries.helm_bin)
    return path


def run_helm(helm: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stderr}{proc.stdout}"
    return proc.stdout


def render(helm: Path, release: str, namespace: str, *sets: str) -> str:
    return run_helm(helm, "template", release, str(CHART), "--namespace", namespace, *sets)


def docs(manifests: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(manifests) if d]


def can_i(kubectl: Kubectl, sa: str, verb: str, resource: str, namespace: str | None) -> bool:
    """`kubectl auth can-i` as the service account; `pods/log` means the subresource.

    (kubectl itself reads `pods/log` as the pod named "log", hence --subresource.)
    """
    kind, _, sub = resource.partition("/")
    args = ["auth", "can-i", verb, kind, f"--as={sa}"]
    if sub:
        args.append(f"--subresource={sub}")
    proc = kubectl(*args, namespace=namespace, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


# What the operator does (controller.py, runner.py, attempts.py, cron/controller.py) ...
NEEDED = [
    ("list", "workflows.shoal.dev"),
    ("watch", "workflows.shoal.dev"),
    ("get", "workflows.shoal.dev"),
    ("patch", "workflows.shoal.dev"),
    ("create", "workflows.shoal.dev"),
    ("delete", "workflows.shoal.dev"),
    ("patch", "workflows.shoal.dev/status"),
    ("update", "workflows.shoal.dev/finalizers"),
    ("list", "cronworkflows.shoal.dev"),
    ("watch", "cronworkflows.shoal.dev"),
    ("patch", "cronworkflows.shoal.dev/status"),
    ("create", "jobs.batch"),
    ("delete", "jobs.batch"),
    ("list", "jobs.batch"),
    ("list", "pods"),
    ("watch", "pods"),
    ("get", "pods/log"),
    ("create", "events"),
]
# ... and what it must never be able to do.
FORBIDDEN = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("create", "pods/exec"),
    ("create", "pods"),
    ("delete", "pods"),
    ("create", "deployments.apps"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "serviceaccounts/token"),
    ("delete", "cronworkflows.shoal.dev"),
    ("create", "configmaps"),
]
CLUSTER_SCOPED = [
    ("list", "namespaces"),
    ("list", "nodes"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
]


@pytest.mark.parametrize(
    "sets",
    [
        [],
        ["--set", "clusterWide=true"],
        ["--set", "clusterWide=true", "--set", "watchNamespaces={team-*}"],
        ["--set", "watchNamespaces={a,b}", "--set", "metrics.serviceMonitor.enabled=true"],
        ["--set", "archive.existingSecret=db", "--set", "archive.mode=env"],
        ["--set", "archive.existingSecret=db", "--set", "metrics.port=0"],
    ],
    ids=["default", "cluster-wide", "globs", "namespaces", "dsn-env", "dsn-file-no-metrics"],
)
def test_lint_is_clean_and_the_chart_renders(helm: Path, sets: list[str]) -> None:
    out = run_helm(helm, "lint", "--strict", str(CHART), *sets)
    assert "0 chart(s) failed" in out
    rendered = docs(render(helm, "shoal", "shoal", *sets))
    kinds = [d["kind"] for d in rendered]
    assert kinds.count("Deployment") == 1
    deploy = next(d for d in rendered if d["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e for e in container["env"]}
    for name in (
        "SHOAL_NAMESPACES",
        "SHOAL_WORKER_IMAGE",
        "SHOAL_PENDING_TIMEOUT",
        "SHOAL_METRICS_PORT",
        "SHOAL_MAX_CONCURRENT_REQUESTS",
    ):
        assert name in env
    # Never the DSN itself in the manifest: a file from the Secret, or a secretKeyRef.
    if "archive.existingSecret=db" in sets:
        if "archive.mode=env" in sets:
            assert env["SHOAL_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "db"
        else:
            assert env["SHOAL_DATABASE_URL_FILE"]["value"].startswith("/etc/shoal/database/")
    if "metrics.port=0" in sets:
        assert "livenessProbe" not in container
        assert "Service" not in kinds
    else:
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    cluster_wide = "clusterWide=true" in sets
    assert ("ClusterRole" in kinds) == cluster_wide
    assert ("Role" in kinds) == (not cluster_wide)
    assert ("ServiceMonitor" in kinds) == ("metrics.serviceMonitor.enabled=true" in sets)
    for role in (d for d in rendered if d["kind"] in {"Role", "ClusterRole"}):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"]
            assert "*" not in rule["resources"]
            assert not {"secrets", "pods/exec", "configmaps"} & set(rule["resources"])
    if "watchNamespaces={a,b}" in sets:
        roles = [d["metadata"]["namespace"] for d in rendered if d["kind"] == "Role"]
        assert roles == ["a", "b"]
        assert env["SHOAL_NAMESPACES"]["value"] == "a,b"


def test_namespaced_install_applies_and_its_rbac_is_least_privilege(
    helm: Path, kubectl: Kubectl, namespace: str
) -> None:
    manifests = render(helm, "shoal", namespace, *NO_IMAGE)
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifests)
    kubectl("apply", "-f", "-", stdin=manifests)
    sa_name = "shoal-operator"
    kubectl("get", "serviceaccount", sa_name, "shoal-worker", namespace=namespace)
    sa = f"system:serviceaccount:{namespace}:{sa_name}"
    for verb, resource in NEEDED:
        assert can_i(kubectl, sa, verb, resource, namespace), f"cannot {verb} {resource}"
    for verb, resource in FORBIDDEN:
        assert not can_i(kubectl, sa, verb, resource, namespace), f"may {verb} {resource}"
    # Nothing in another namespace, nothing cluster-scoped.
    for verb, resource in NEEDED:
        assert not can_i(kubectl, sa, verb, resource, "default"), f"{verb} {resource} in default"
    for verb, resource in CLUSTER_SCOPED:
        assert not can_i(kubectl, sa, verb, resource, None), f"may {verb} {resource}"
    # The worker's service account has no permissions at all.
    worker = f"system:serviceaccount:{namespace}:shoal-worker"
    for verb, resource in NEEDED:
        assert not can_i(kubectl, worker, verb, resource, namespace), f"worker: {verb} {resource}"


@pytest.fixture
def cluster_release(kubectl: Kubectl) -> Iterator[str]:
    """A unique release name; its cluster-scoped RBAC objects are deleted afterwards."""
    release = f"shoal-{secrets.token_hex(3)}"
    try:
        yield release
    finally:
        for kind in ("clusterrolebinding", "clusterrole"):
            kubectl("delete", kind, f"{release}-operator", "--ignore-not-found", check=False)


def test_cluster_wide_install_applies_and_reaches_every_namespace(
    helm: Path, kubectl: Kubectl, namespace: str, cluster_release: str
) -> None:
    manifests = render(helm, cluster_release, namespace, "--set", "clusterWide=true", *NO_IMAGE)
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifests)
    kubectl("apply", "-f", "-", stdin=manifests)
    sa = f"system:serviceaccount:{namespace}:{cluster_release}-operator"
    for ns in (namespace, "default"):
        for verb, resource in NEEDED:
            assert can_i(kubectl, sa, verb, resource, ns), f"cannot {verb} {resource} in {ns}"
        for verb, resource in FORBIDDEN:
            assert not can_i(kubectl, sa, verb, resource, ns), f"may {verb} {resource} in {ns}"
    # Without namespace globs, not even namespaces.
    for verb, resource in CLUSTER_SCOPED:
        assert not can_i(kubectl, sa, verb, resource, None), f"may {verb} {resource}"
