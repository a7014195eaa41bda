"""The chart's `shoal server` (server.enabled), Grafana dashboard and PrometheusRule.

Rendering and lint need only helm; the install test applies the chart to the test
control plane (with an image that never pulls: what is tested is the objects and the
server ServiceAccount's RBAC, asked of the API server with `kubectl auth can-i`).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.test_chart import (
    CHART,
    NO_IMAGE,
    NO_WEBHOOK,
    can_i,
    docs,
    helm,
    render,
    run_helm,
)
from tests.support.plugin import Kubectl

__all__ = ["helm"]  # the session fixture, imported for pytest

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]

SERVER = ["--set", "server.enabled=true"]
READS = ["get", "list", "watch"]
# What the server's own identity may read, where the operator runs workflows ...
STREAMED = ["workflows.shoal.dev", "cronworkflows.shoal.dev", "pods", "jobs.batch", "events"]
# ... and what it must never do there.
WRITES = ["create", "update", "patch", "delete", "deletecollection"]
NEVER = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("get", "pods/log"),
    ("create", "pods/exec"),
    ("create", "serviceaccounts/token"),
    ("get", "configmaps"),
]


def server_objects(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d
        for d in rendered
        if (d["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "shoal-server"
    ]


def one(rendered: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in server_objects(rendered) if d["kind"] == kind]
    return found


def test_server_is_off_by_default(helm: Path) -> None:
    rendered = docs(render(helm, "shoal", "shoal"))
    assert server_objects(rendered) == []
    assert not [d for d in rendered if d["kind"] in ("ConfigMap", "PrometheusRule", "Ingress")]


@pytest.mark.parametrize(
    "sets",
    [
        SERVER,
        [*SERVER, "--set", "clusterWide=true"],
        [*SERVER, "--set", "watchNamespaces={a,b}", "--set", "archive.existingSecret=db"],
        [*SERVER, "--set", "archive.existingSecret=db", "--set", "archive.mode=env"],
        [
            *SERVER,
            *("--set", "server.ingress.enabled=true", "--set", "server.ingress.host=shoal.example"),
            *("--set", "server.ingress.tlsSecret=shoal-tls"),
        ],
    ],
    ids=["namespaced", "cluster-wide", "namespaces-dsn-file", "dsn-env", "ingress"],
)
def test_server_renders_least_privilege_with_probes(helm: Path, sets: list[str]) -> None:
    assert "0 chart(s) failed" in run_helm(helm, "lint", "--strict", str(CHART), *sets)
    rendered = docs(render(helm, "shoal", "shoal", *sets))
    deploy = one(rendered, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "shoal-server"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    (container,) = pod["containers"]
    assert container["command"] == ["shoal", "server"]
    assert "--host=0.0.0.0" in container["args"]
    assert "--auth-mode=client" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]
    # Its pods are not the operator's: neither Service selects the other's.
    operator = next(d for d in rendered if d["kind"] == "Deployment" and d is not deploy)
    assert deploy["spec"]["selector"] != operator["spec"]["selector"]
    service = one(rendered, "Service")
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    env = {e["name"]: e for e in container["env"]}
    if "archive.mode=env" in sets:  # the operator's Secret, never a value
        ref = env["SHOAL_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "db", "key": "url"}
    elif "archive.existingSecret=db" in sets:
        assert env["SHOAL_DATABASE_URL_FILE"]["value"] == "/etc/shoal/database/url"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["database"]["secret"] == {"secretName": "db"}
    else:
        assert not {"SHOAL_DATABASE_URL", "SHOAL_DATABASE_URL_FILE"} & env.keys()
    check_server_rules(rendered, sets)
    ingresses = [d for d in server_objects(rendered) if d["kind"] == "Ingress"]
    if "server.ingress.enabled=true" in sets:
        (ingress,) = ingresses
        assert ingress["spec"]["rules"][0]["host"] == "shoal.example"
        assert ingress["spec"]["tls"] == [{"hosts": ["shoal.example"], "secretName": "shoal-tls"}]
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": "shoal-server", "port": {"name": "http"}}
    else:
        assert ingresses == []


def check_server_rules(rendered: list[dict[str, Any]], sets: list[str]) -> None:
    """Auth reviews cluster-wide; reads only, of what it streams, where workflows run."""
    roles = [d for d in server_objects(rendered) if d["kind"] in ("Role", "ClusterRole")]
    auth = [r for r in roles if r["metadata"]["name"].startswith("shoal-server-auth-")]
    assert [r["kind"] for r in auth] == ["ClusterRole"]
    assert auth[0]["rules"] == [
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["tokenreviews"],
            "verbs": ["create"],
        },
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["subjectaccessreviews"],
            "verbs": ["create"],
        },
    ]
    readers = [r for r in roles if r not in auth]
    expected_kind = "ClusterRole" if "clusterWide=true" in sets else "Role"
    assert {r["kind"] for r in readers} == {expected_kind}
    if "watchNamespaces={a,b}" in sets:
        assert [r["metadata"]["namespace"] for r in readers] == ["a", "b"]
    for role in readers:
        granted = {
            (group, resource): rule["verbs"]
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
        }
        assert granted == {
            ("shoal.dev", "workflows"): READS,
            ("shoal.dev", "cronworkflows"): READS,
            ("batch", "jobs"): READS,
            ("", "pods"): READS,
            ("", "events"): READS,
        }


def test_server_ingress_without_a_host_fails_naming_the_value(helm: Path) -> None:
    argv = [str(helm), "template", "shoal", str(CHART), *SERVER]
    argv += ["--set", "server.ingress.enabled=true"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode != 0
    assert "server.ingress.host" in proc.stderr


def test_dashboard_and_alerts_ship_the_chart_files_unchanged(helm: Path) -> None:
    sets = ["--set", "grafana.dashboard.enabled=true", "--set", "prometheusRule.enabled=true"]
    sets += ["--set", "grafana.dashboard.namespace=monitoring"]
    assert "0 chart(s) failed" in run_helm(helm, "lint", "--strict", str(CHART), *sets)
    rendered = docs(render(helm, "shoal", "shoal", *sets))
    (config_map,) = [d for d in rendered if d["kind"] == "ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    shipped = json.loads(config_map["data"]["shoal-operator.json"])
    assert shipped == json.loads((CHART / "dashboards" / "shoal.json").read_text())
    (rule,) = [d for d in rendered if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())


@pytest.fixture
def server_release(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """Release `shoal` in the test namespace; its cluster-scoped objects go afterwards."""
    try:
        yield "shoal"
    finally:
        for kind in ("clusterrolebinding", "clusterrole"):
            name = f"shoal-server-auth-{namespace}"
            kubectl("delete", kind, name, "--ignore-not-found", check=False)


def listed_rules(kubectl: Kubectl, sa: str, namespace: str) -> dict[str, set[str]]:
    """`kubectl auth can-i --list` as the account: resource -> verbs (resource rules)."""
    out = kubectl("auth", "can-i", "--list", f"--as={sa}", namespace=namespace).stdout
    rules: dict[str, set[str]] = {}
    for line in out.splitlines()[1:]:
        match = re.match(r"^(\S+)\s+\[\]\s+\[[^\]]*\]\s+\[([^\]]*)\]\s*$", line)
        if match:
            rules.setdefault(match.group(1), set()).update(match.group(2).split())
    return rules


def test_server_install_applies_and_its_rbac_is_exactly_what_it_streams(
    helm: Path, kubectl: Kubectl, namespace: str, server_release: str
) -> None:
    manifests = render(helm, server_release, namespace, *SERVER, *NO_IMAGE, *NO_WEBHOOK)
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifests)
    kubectl("apply", "-f", "-", stdin=manifests)
    kubectl("get", "deployment/shoal-server", "service/shoal-server", namespace=namespace)
    sa = f"system:serviceaccount:{namespace}:shoal-server"
    assert can_i(kubectl, sa, "create", "tokenreviews.authentication.k8s.io", None)
    assert can_i(kubectl, sa, "create", "subjectaccessreviews.authorization.k8s.io", None)
    for resource in STREAMED:
        for verb in READS:
            assert can_i(kubectl, sa, verb, resource, namespace), f"cannot {verb} {resource}"
            assert not can_i(kubectl, sa, verb, resource, "default"), (
                f"{verb} {resource} in default"
            )
        for verb in WRITES:
            assert not can_i(kubectl, sa, verb, resource, namespace), f"may {verb} {resource}"
    for verb, resource in NEVER:
        assert not can_i(kubectl, sa, verb, resource, namespace), f"may {verb} {resource}"
    # Exactly that: every resource rule the API server reports for it in the namespace,
    # beyond what any authenticated account has (an account bound to nothing).
    baseline = listed_rules(kubectl, f"system:serviceaccount:{namespace}:nobody", namespace)
    rules = listed_rules(kubectl, sa, namespace)
    extra = {r: v - baseline.get(r, set()) for r, v in rules.items()}
    assert {r: v for r, v in extra.items() if v} == {
        "tokenreviews.authentication.k8s.io": {"create"},
        "subjectaccessreviews.authorization.k8s.io": {"create"},
        **{resource: set(READS) for resource in STREAMED},
    }
