"""The Helm chart (helm/shoal): lint, render, apply, and prove its RBAC.

helm is built from its Go module at a pinned version (hack/testcluster/build.sh helm).
Most tests apply the chart with an image under the `.invalid` domain, which the node
agent refuses to "pull": they exercise the RBAC objects and the API server's admission.
`test_own_operator_*` installs the chart as it is: the node agent maps the operator
image to the repository's `shoal operator` (tests/support/controlplane.py), so the
operator runs as the chart's pod, uid 65532, with only its service account's token,
and runs a Workflow. (The name keeps the session's operator out of its namespace.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import urllib3
import yaml

from tests.cluster.conftest import wait_until, wait_workflow
from tests.support import binaries
from tests.support.plugin import Kubectl, _prebuilt
from tests.support.procs import free_port
from tests.support.waits import pod_phase, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "shoal"
# Never pulled: the node agent treats *.invalid/* as an image that does not exist.
NO_IMAGE = ["--set", "image.repository=registry.invalid/shoal/operator"]
# For installs whose operator never runs: a webhook configuration pointing at it would
# refuse (failurePolicy Fail) every Workflow in the namespaces it covers.
NO_WEBHOOK = ["--set", "webhook.enabled=false"]


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


# The artifact store, every value set; credentials from the Secret "s3-creds".
ARTIFACTS = [
    *("--set", "artifacts.url=s3://shoal-runs/prod"),
    *("--set", "artifacts.endpoint=https://minio.storage.svc:9000"),
    *("--set", "artifacts.region=eu-west-1"),
    *("--set", "artifacts.pathStyle=true"),
    *("--set", "artifacts.verify=false"),
    *("--set", "artifacts.existingSecret=s3-creds"),
    *("--set", "archive.existingSecret=db", "--set", "archive.mode=env"),
]
# Who workflows may run as, and the Secrets the operator may read by name.
SERVICE_ACCOUNTS = [
    *("--set", "workflowServiceAccounts.allowed={etl}"),
    *("--set", "workflowServiceAccounts.selector=shoal.dev/workflow-runner=true"),
    *("--set", "rbac.secretNames={team-s3}"),
]
# Settings whose values are credentials: only ever a secretKeyRef.
SECRET_ENV = {"SHOAL_DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


# What the operator does (controller.py, runner.py, attempts.py, cron/controller.py) ...
NEEDED = [
    ("get", "workflowtemplates.shoal.dev"),
    ("list", "workflowtemplates.shoal.dev"),
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
    ("deletecollection", "jobs.batch"),
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
CRDS = "customresourcedefinitions.apiextensions.k8s.io"
CLUSTER_SCOPED = [
    ("list", "namespaces"),
    ("list", "nodes"),
    ("create", CRDS),
    ("delete", CRDS),
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
        ARTIFACTS,
        SERVICE_ACCOUNTS,
        NO_WEBHOOK,
        ["--set", "webhook.failurePolicy=Ignore", "--set", "webhook.port=8443"],
    ],
    ids=[
        "default",
        "cluster-wide",
        "globs",
        "namespaces",
        "dsn-env",
        "dsn-file-no-metrics",
        "artifacts",
        "service-accounts",
        "no-webhook",
        "webhook-ignore",
    ],
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
    # Never a credential in the manifest: a file from the Secret, or a secretKeyRef;
    # and the chart makes no ConfigMap or Secret a credential could hide in.
    for name in SECRET_ENV & env.keys():
        assert set(env[name]) == {"name", "valueFrom"}, env[name]
        assert set(env[name]["valueFrom"]) == {"secretKeyRef"}, env[name]
    assert "ConfigMap" not in kinds
    assert [d["metadata"]["name"] for d in rendered if d["kind"] == "Secret"] == (
        [] if sets == NO_WEBHOOK else ["shoal-operator-webhook-tls"]
    )
    check_webhook(rendered, sets, env, container, pod)
    assert all("--database-url" not in arg for arg in container.get("args", []))
    if sets == ARTIFACTS:
        assert {k: v.get("value") for k, v in env.items() if "S3" in k or "ARTIFACTS" in k} == {
            "SHOAL_ARTIFACTS": "s3://shoal-runs/prod",
            "SHOAL_S3_ENDPOINT": "https://minio.storage.svc:9000",
            "SHOAL_S3_REGION": "eu-west-1",
            "SHOAL_S3_PATH_STYLE": "true",
            "SHOAL_S3_VERIFY": "false",
            # A name, for the worker pods' own secretKeyRef in their namespace.
            "SHOAL_ARTIFACTS_CREDENTIALS_SECRET": "s3-creds",
        }
        refs = {k: env[k]["valueFrom"]["secretKeyRef"] for k in SECRET_ENV}
        assert refs == {
            "SHOAL_DATABASE_URL": {"name": "db", "key": "url"},
            "AWS_ACCESS_KEY_ID": {"name": "s3-creds", "key": "accessKeyId"},
            "AWS_SECRET_ACCESS_KEY": {"name": "s3-creds", "key": "secretAccessKey"},
        }
    else:  # no store configured: nothing of it rendered (the operator then has none)
        assert not [k for k in env if "S3" in k or "ARTIFACTS" in k or k.startswith("AWS_")]
    if "archive.existingSecret=db" in sets:
        if "archive.mode=env" in sets:
            assert env["SHOAL_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "db"
        else:
            assert env["SHOAL_DATABASE_URL_FILE"]["value"].startswith("/etc/shoal/database/")
    if "metrics.port=0" in sets:
        assert "livenessProbe" not in container
        services = [d["metadata"]["name"] for d in rendered if d["kind"] == "Service"]
        assert services == ["shoal-operator-webhook"]  # no metrics Service
    else:
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    cluster_wide = "clusterWide=true" in sets
    cluster_roles = [d for d in rendered if d["kind"] == "ClusterRole"]
    if cluster_wide:
        assert len(cluster_roles) == 1
    else:  # namespaced: one ClusterRole, that reads ClusterWorkflowTemplates and nothing else
        ((only,),) = [r["rules"] for r in cluster_roles]
        assert only == {
            "apiGroups": ["shoal.dev"],
            "resources": ["clusterworkflowtemplates"],
            "verbs": ["get", "list", "watch"],
        }
    assert ("Role" in kinds) == (not cluster_wide)
    assert ("ServiceMonitor" in kinds) == ("metrics.serviceMonitor.enabled=true" in sets)
    # The operator knows its own account (never one a Workflow may use); the chart's
    # worker account is allowed beside `default`.
    assert env["POD_SERVICE_ACCOUNT"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "spec.serviceAccountName"
    )
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    allowed = env["SHOAL_ALLOWED_SERVICE_ACCOUNTS"]["value"]
    assert allowed == ("etl,shoal-worker" if sets == SERVICE_ACCOUNTS else "shoal-worker")
    for role in (d for d in rendered if d["kind"] in {"Role", "ClusterRole"}):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"]
            assert "*" not in rule["resources"]
            assert not {"pods/exec", "configmaps"} & set(rule["resources"])
            if "secrets" in rule["resources"]:  # only by name
                assert rule["resourceNames"] == ["team-s3"]
                assert rule["verbs"] == ["get"]
            if "serviceaccounts" in rule["resources"]:  # only to read labels
                assert sets == SERVICE_ACCOUNTS
                assert rule["verbs"] == ["get"]
    if sets == SERVICE_ACCOUNTS:
        selector = env["SHOAL_SERVICE_ACCOUNT_SELECTOR"]["value"]
        assert selector == "shoal.dev/workflow-runner=true"
    else:
        assert "SHOAL_SERVICE_ACCOUNT_SELECTOR" not in env
    if "watchNamespaces={a,b}" in sets:
        roles = [d["metadata"]["namespace"] for d in rendered if d["kind"] == "Role"]
        assert roles == ["a", "b"]
        assert env["SHOAL_NAMESPACES"]["value"] == "a,b"


def check_webhook(
    rendered: list[dict[str, Any]],
    sets: list[str],
    env: dict[str, Any],
    container: dict[str, Any],
    pod: dict[str, Any],
) -> None:
    """The webhook's objects fit together: the API server reaches the operator's port
    through the Service, trusts its certificate through the caBundle, and sends it
    Workflow and CronWorkflow writes (never status) from the watched namespaces only."""
    from cryptography import x509

    configs = [d for d in rendered if d["kind"] == "ValidatingWebhookConfiguration"]
    if sets == NO_WEBHOOK:
        assert configs == []
        assert "SHOAL_WEBHOOK_CERT_DIR" not in env
        return
    (config,) = configs
    (hook,) = config["webhooks"]
    assert hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["timeoutSeconds"] == 10
    assert hook["failurePolicy"] == ("Ignore" if "webhook.failurePolicy=Ignore" in sets else "Fail")
    rule, cluster_rule = hook["rules"]
    assert rule["apiGroups"] == cluster_rule["apiGroups"] == ["shoal.dev"]
    # No status subresource; templates are linted when applied (docs/templates.md).
    assert rule["resources"] == ["workflows", "cronworkflows", "workflowtemplates"]
    assert (cluster_rule["resources"], cluster_rule["scope"]) == (
        ["clusterworkflowtemplates"],
        "Cluster",
    )
    assert rule["operations"] == cluster_rule["operations"] == ["CREATE", "UPDATE"]
    selector = hook.get("namespaceSelector")
    if "clusterWide=true" in sets:  # all namespaces, or globs a selector cannot express
        assert selector is None
    else:
        expected = ["a", "b"] if "watchNamespaces={a,b}" in sets else ["shoal"]
        assert selector == {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": expected}
            ]
        }
    # The Service routes to the container's webhook port, where the operator listens.
    target = hook["clientConfig"]["service"]
    service = next(
        d for d in rendered if d["kind"] == "Service" and d["metadata"]["name"] == target["name"]
    )
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (target["port"], "webhook")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    webhook_port = 8443 if "webhook.port=8443" in sets else 9443
    assert ports["webhook"] == webhook_port
    assert env["SHOAL_WEBHOOK_PORT"]["value"] == str(webhook_port)
    # The operator reads the chart's Secret from the directory it is told.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert env["SHOAL_WEBHOOK_CERT_DIR"]["value"] == mounts["webhook-tls"]
    secret_name = volumes["webhook-tls"]["secret"]["secretName"]
    secret = next(d for d in rendered if d["kind"] == "Secret")
    assert secret["metadata"]["name"] == secret_name
    assert secret["type"] == "kubernetes.io/tls"
    # The caBundle is the CA that signed a certificate for the Service's DNS name.
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == data["ca.crt"]
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"{target['name']}.{target['namespace']}.svc" in names.get_values_for_type(x509.DNSName)


@pytest.fixture
def templates_reader(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """The ClusterRole (and binding) a namespaced release `shoal` in this namespace reads
    ClusterWorkflowTemplates through; cluster-scoped, so deleted afterwards."""
    name = f"shoal-operator-{namespace}-templates"
    try:
        yield name
    finally:
        for kind in ("clusterrolebinding", "clusterrole"):
            kubectl("delete", kind, name, "--ignore-not-found", check=False)


@pytest.fixture
def webhook_configuration(kubectl: Kubectl, namespace: str, templates_reader: str) -> Iterator[str]:
    """The name of the chart's (cluster-scoped) webhook configuration for release `shoal`
    in this namespace, deleted afterwards (with the templates ClusterRole)."""
    name = f"shoal-operator-{namespace}"
    try:
        yield name
    finally:
        kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")


def test_namespaced_install_applies_and_its_rbac_is_least_privilege(
    helm: Path, kubectl: Kubectl, namespace: str, webhook_configuration: str
) -> None:
    manifests = render(helm, "shoal", namespace, *NO_IMAGE)
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifests)
    kubectl("apply", "-f", "-", stdin=manifests)
    # The webhook covers this namespace only.
    stored = json.loads(
        kubectl("get", "validatingwebhookconfiguration", webhook_configuration, "-o", "json").stdout
    )
    (hook,) = stored["webhooks"]
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == [namespace]
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
    for verb, resource in [*CLUSTER_SCOPED, ("list", CRDS), ("watch", CRDS)]:
        assert not can_i(kubectl, sa, verb, resource, None), f"may {verb} {resource}"
    # ... but ClusterWorkflowTemplates (`clusterScope: true` references), read only.
    templates = "clusterworkflowtemplates.shoal.dev"
    assert can_i(kubectl, sa, "get", templates, None), "cannot get ClusterWorkflowTemplates"
    for verb in ("create", "update", "delete"):
        assert not can_i(kubectl, sa, verb, templates, None), f"may {verb} {templates}"
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
    manifests = render(
        helm, cluster_release, namespace, "--set", "clusterWide=true", *NO_IMAGE, *NO_WEBHOOK
    )
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifests)
    kubectl("apply", "-f", "-", stdin=manifests)
    sa = f"system:serviceaccount:{namespace}:{cluster_release}-operator"
    for ns in (namespace, "default"):
        for verb, resource in NEEDED:
            assert can_i(kubectl, sa, verb, resource, ns), f"cannot {verb} {resource} in {ns}"
        for verb, resource in FORBIDDEN:
            assert not can_i(kubectl, sa, verb, resource, ns), f"may {verb} {resource} in {ns}"
    # Reading CRDs (kopf's scan), but without namespace globs, not even namespaces.
    for verb in ("list", "watch"):
        assert can_i(kubectl, sa, verb, CRDS, None), f"cannot {verb} CRDs"
    for verb, resource in CLUSTER_SCOPED:
        assert not can_i(kubectl, sa, verb, resource, None), f"may {verb} {resource}"


def test_read_secrets_grants_get_by_name_and_nothing_more(
    helm: Path, kubectl: Kubectl, namespace: str, templates_reader: str
) -> None:
    manifests = render(
        helm, "shoal", namespace, "--set", "rbac.readSecrets=true", *NO_IMAGE, *NO_WEBHOOK
    )
    kubectl("apply", "-f", "-", stdin=manifests)
    sa = f"system:serviceaccount:{namespace}:shoal-operator"
    assert can_i(kubectl, sa, "get", "secrets", namespace)
    for verb in ("list", "watch", "create", "update", "delete"):
        assert not can_i(kubectl, sa, verb, "secrets", namespace), f"may {verb} secrets"
    assert not can_i(kubectl, sa, "get", "secrets", "default")


def test_secret_names_grant_get_of_those_names_only(
    helm: Path, kubectl: Kubectl, namespace: str, templates_reader: str
) -> None:
    manifests = render(
        helm, "shoal", namespace, "--set", "rbac.secretNames={team-s3}", *NO_IMAGE, *NO_WEBHOOK
    )
    kubectl("apply", "-f", "-", stdin=manifests)
    sa = f"system:serviceaccount:{namespace}:shoal-operator"

    def may(verb: str, target: str) -> bool:
        proc = kubectl(
            "auth", "can-i", verb, target, f"--as={sa}", namespace=namespace, check=False
        )
        assert proc.returncode in (0, 1), proc.stderr
        return proc.returncode == 0

    assert may("get", "secrets/team-s3")
    assert not may("get", "secrets/other")
    assert not may("get", "secrets")
    assert not may("list", "secrets")


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["artifacts.url=gs://bucket"], 'artifacts.url: "gs://bucket" must be s3://'),
        (["artifacts.url=s3://b1", "artifacts.pathStyle=yes"], 'artifacts.pathStyle: "yes"'),
        (["artifacts.existingSecret=s3-creds"], "need artifacts.url"),
    ],
    ids=["not-s3", "path-style", "secret-without-url"],
)
def test_bad_artifact_values_fail_with_the_value_named(
    helm: Path, sets: list[str], message: str
) -> None:
    argv = [str(helm), "template", "shoal", str(CHART)]
    for item in sets:
        argv += ["--set", item]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr


# -- the operator as the chart's pod ----------------------------------------------------


def follow_log_until(
    k8s_api: Any, namespace: str, pod: str, wanted: list[str], timeout: float
) -> str:
    """Follow a pod's log until a line contains all of ``wanted``: that line (or fail)."""
    from kubernetes import client

    resp = client.CoreV1Api(k8s_api).read_namespaced_pod_log(
        pod, namespace, follow=True, _preload_content=False, _request_timeout=timeout
    )
    seen: list[str] = []
    buffer = b""
    deadline = time.monotonic() + timeout  # a chatty log never times a read out
    try:
        for chunk in resp.stream(4096):
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                seen.append(raw.decode(errors="replace"))
                if all(part in seen[-1] for part in wanted):
                    return seen[-1]
            if time.monotonic() > deadline:
                break
    except urllib3.exceptions.ReadTimeoutError:
        pass  # the deadline
    finally:
        resp.release_conn()
    tail = "\n".join(seen[-30:])
    raise AssertionError(f"pod {pod} never logged {wanted!r} within {timeout}s; its tail:\n{tail}")


def process_of(pod: Any) -> Path:
    """/proc of the container's process: the node agent names it in the container ID."""
    container_id = pod.status.container_statuses[0].container_id
    match = re.fullmatch(r"shoal://.+-(\d+)", container_id or "")
    assert match, f"not a node-agent container id: {container_id!r}"
    return Path("/proc") / match.group(1)


def test_own_operator_from_the_chart_runs_a_workflow_with_only_its_service_account(
    helm: Path,
    kubectl: Kubectl,
    k8s_api: Any,
    namespace: str,
    postgres: Any,
    webhook_configuration: str,
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(k8s_api)
    port, webhook_port = free_port(), free_port()
    # The archive's DSN, as a user provides it: a Secret the chart only names.
    kubectl(
        *("create", "secret", "generic", "shoal-database", f"--from-literal=url={postgres.dsn}"),
        namespace=namespace,
    )
    # The chart as a user installs it (its default image, restricted worker pods), with
    # a free port for the metrics and probes (pods share the host's network here) and
    # Jobs kept, so the worker pods can be inspected afterwards.
    manifests = render(
        helm,
        "shoal",
        namespace,
        *("--set", f"metrics.port={port}", "--set", "keepSucceededJobs=true"),
        *("--set", f"webhook.port={webhook_port}"),
        *("--set", "archive.existingSecret=shoal-database"),
    )
    assert postgres.dsn not in manifests
    kubectl("apply", "-f", "-", stdin=manifests)
    selector = "app.kubernetes.io/name=shoal-operator,app.kubernetes.io/instance=shoal"
    pod = wait_for(
        core.list_namespaced_pod,
        namespace,
        label_selector=selector,
        predicate=pod_phase("Running"),
        timeout=60,
        description="the operator pod of the chart's Deployment to run",
    )
    name = pod.metadata.name
    spec = pod.spec
    assert spec.service_account_name == "shoal-operator"
    (container,) = spec.containers
    assert container.image == "ghcr.io/shoal-dev/operator:0.1.0"
    token_mounts = [
        m.mount_path
        for m in container.volume_mounts
        if m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount"
    ]
    assert token_mounts, "the API server did not add the projected service-account token"

    # The probes the chart declares, against the real process: /readyz turns 200 once
    # the operator has logged in with the token and bound its API client (so, too, the
    # launcher has long become the operator: the checks below see the operator).
    ports = {p.name: p.container_port for p in container.ports}
    probes = {
        "liveness": container.liveness_probe.http_get,
        "readiness": container.readiness_probe.http_get,
    }
    for kind, probe in probes.items():
        url = f"http://127.0.0.1:{ports[probe.port]}{probe.path}"
        wait_until(lambda u=url: probe_ok(u), 60, f"the {kind} probe {url} to answer 200")
    assert probes["readiness"].path == "/readyz"
    assert probes["liveness"].path == "/healthz"

    # The webhook serves the chart's certificate, which the CA bundle the API server was
    # given verifies for the Service's name. (This control plane has no kube-proxy to
    # reach a Service, so the configuration goes before workflows are applied;
    # tests/cluster/test_admission.py covers the API server's calls.)
    stored = json.loads(
        kubectl("get", "validatingwebhookconfiguration", webhook_configuration, "-o", "json").stdout
    )
    client_config = stored["webhooks"][0]["clientConfig"]
    ca = base64.b64decode(client_config["caBundle"]).decode()
    service = f"{client_config['service']['name']}.{namespace}.svc"
    assert ports["webhook"] == webhook_port
    wait_until(lambda: serves_tls(webhook_port, ca, service), 30, f"the webhook's TLS as {service}")
    kubectl("delete", "validatingwebhookconfiguration", webhook_configuration)

    # The node's view of the process: uid 65532 from the chart's securityContext, and
    # nothing but the in-cluster settings to find the API server (no kubeconfig).
    proc = process_of(pod)
    uids = next(
        line.split()[1:]
        for line in (proc / "status").read_text().splitlines()
        if line.startswith("Uid:")
    )
    assert uids == ["65532"] * 4
    environ = dict(
        item.split("=", 1)
        for item in (proc / "environ").read_bytes().decode().split("\0")
        if "=" in item
    )
    assert "KUBECONFIG" not in environ
    assert environ["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert environ["SHOAL_NAMESPACES"] == namespace
    assert (environ["POD_NAMESPACE"], environ["POD_SERVICE_ACCOUNT"]) == (
        namespace,
        "shoal-operator",
    )
    # The DSN reaches it as a file from the Secret, never through its environment.
    assert environ["SHOAL_DATABASE_URL_FILE"] == "/etc/shoal/database/url"
    assert postgres.dsn not in "\n".join(environ.values())

    # An example, in the watched namespace, with restricted worker pods.
    doc = yaml.safe_load((REPO / "examples" / "hello.yaml").read_text())
    doc["spec"]["parameters"] = {"name": "chart"}
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), namespace=namespace)
    done = wait_workflow(k8s_api, namespace, "hello", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    outputs = done["status"]["nodes"]["goodbye"]["outputs"]
    assert outputs == {"message": "after 'hello, chart!', goodbye, chart!"}
    workers = core.list_namespaced_pod(namespace, label_selector="shoal.dev/workflow=hello")
    assert len(workers.items) == 2
    for worker in workers.items:
        assert worker.spec.security_context.run_as_user == 65532
        assert worker.spec.automount_service_account_token is False
        # (The result can reach the operator a moment before the process has exited.)
        wait_for(
            core.list_namespaced_pod,
            namespace,
            field_selector=f"metadata.name={worker.metadata.name}",
            predicate=pod_phase("Succeeded"),
            timeout=30,
            description=f"worker pod {worker.metadata.name} to succeed as uid 65532",
        )
    # Archived through that DSN.
    history = wait_until(
        lambda: archived_runs(postgres.dsn, namespace),
        30,
        f"workflow hello in the archive (shoal history -n {namespace})",
    )
    assert [(r["name"], r["phase"]) for r in history] == [("hello", "Succeeded")]
    # The operator's own Event about the run: events/create under its Role.
    wait_for(
        core.list_namespaced_event,
        namespace,
        field_selector="involvedObject.name=hello",
        predicate=lambda e: e.reason == "Succeeded",
        timeout=30,
        description="the operator's Succeeded event for workflow hello",
    )

    # Issue 20: locks live in a Lease the chart's RBAC allows; the memo cache in the
    # archive, which this install has (without one it would be the Lease `shoal-memo`).
    for example in ("synchronization-mutex", "memoize"):
        kubectl("apply", "-f", str(REPO / "examples" / f"{example}.yaml"), namespace=namespace)
        run = wait_workflow(k8s_api, namespace, example, timeout=120)
        assert run["status"]["phase"] == "Succeeded", run["status"]
    assert run["status"]["nodes"]["generate"]["memoized"] == {
        "key": "echo-hello world",
        "hit": False,
    }
    leases = client.CoordinationV1Api(k8s_api).list_namespaced_lease(namespace).items
    assert "shoal-locks" in {lease.metadata.name for lease in leases}
    assert memo_keys(postgres.dsn, namespace) == ["echo-hello world"]

    # Issue 13: a node naming the operator's own ServiceAccount (which this default
    # install keeps beside the Workflows) is refused before any Job exists.
    doc["metadata"]["name"] = "as-operator"
    doc["spec"]["defaults"] = {"serviceAccountName": "shoal-operator"}
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), namespace=namespace)
    refused = wait_workflow(k8s_api, namespace, "as-operator", timeout=60)
    assert refused["status"]["phase"] == "Error"
    assert (
        '(defaults.serviceAccountName): ServiceAccount "shoal-operator" is the operator'
        in (refused["status"]["message"])
    )
    jobs = client.BatchV1Api(k8s_api).list_namespaced_job(
        namespace, label_selector="shoal.dev/workflow=as-operator"
    )
    assert jobs.items == []
    del doc["spec"]["defaults"]

    # Whose credentials those were, in the API server's words: without the RoleBinding
    # the next workflow is refused, and the refusal names the chart's service account.
    kubectl("delete", "rolebinding", "shoal-operator", namespace=namespace)
    doc["metadata"]["name"] = "hello-unbound"
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), namespace=namespace)
    sa = f"system:serviceaccount:{namespace}:shoal-operator"
    line = follow_log_until(k8s_api, namespace, name, [f'User "{sa}"', "hello-unbound"], timeout=60)
    assert "forbidden" in line


def memo_keys(dsn: str, namespace: str) -> list[str]:
    """The memo cache's keys for the namespace, in the archive's `shoal_memo` table."""

    async def keys() -> list[str]:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            rows = await conn.fetch("SELECT key FROM shoal_memo WHERE namespace = $1", namespace)
        finally:
            await conn.close()
        return sorted(r["key"] for r in rows)

    return asyncio.run(keys())


def archived_runs(dsn: str, namespace: str) -> list[dict[str, Any]]:
    """Finished runs `shoal history` shows for the namespace."""
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "shoal"), "history", "-n", namespace, "-o", "json"],
        env={**os.environ, "SHOAL_DATABASE_URL": dsn},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    runs: list[dict[str, Any]] = json.loads(proc.stdout)
    return [r for r in runs if r["finishedAt"]]


def serves_tls(port: int, ca: str, hostname: str) -> bool:
    """Whether 127.0.0.1:port completes a TLS handshake as `hostname`, trusting `ca`."""
    context = ssl.create_default_context(cadata=ca)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
            context.wrap_socket(sock, server_hostname=hostname),
        ):
            return True
    except ssl.SSLCertVerificationError:
        raise
    except OSError:
        return False


def probe_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
