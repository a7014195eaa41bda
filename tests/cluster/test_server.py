"""`shoal server` on the real control plane: Kubernetes RBAC decides every request.

Two ServiceAccounts with tokens from the TokenRequest API: user A may read and write
Workflows (and CronWorkflows) in namespace A only; user B may only read Workflows in
namespace B. One server (client auth mode) serves the whole module; no operator runs, as
nothing here needs a Workflow to make progress.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import REPO, create_workflow, wait_until
from tests.support.plugin import Kubectl

pytestmark = [pytest.mark.cluster]

WRITE = ["get", "list", "watch", "create", "patch", "update", "delete"]
READ = ["get", "list", "watch"]


def workflow(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodes": [{"name": "hello", "image": "busybox", "command": ["true"]}]},
    }


@dataclass
class Server:
    """The running `shoal server`, and every response it gave (to search for tokens)."""

    url: str
    log: Path
    tokens: dict[str, str]
    namespaces: dict[str, str]
    seen: list[httpx.Response] = field(default_factory=list)

    def call(self, method: str, path: str, user: str | None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        response = httpx.request(method, self.url + path, headers=headers, timeout=60, **kwargs)
        self.seen.append(response)
        return response


def _role(rbac: Any, namespace: str, name: str, verbs: list[str], crons: bool) -> None:
    from kubernetes import client

    resources = ["workflows", *(["cronworkflows"] if crons else [])]
    rules = [client.V1PolicyRule(api_groups=["shoal.dev"], resources=resources, verbs=verbs)]
    rbac.create_namespaced_role(
        namespace, client.V1Role(metadata=client.V1ObjectMeta(name=name), rules=rules)
    )


def _user(k8s_api: Any, namespace: str, name: str, verbs: list[str], crons: bool) -> str:
    """A ServiceAccount bound to a Role of `verbs` in its namespace; returns its token."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(k8s_api), client.RbacAuthorizationV1Api(k8s_api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    _role(rbac, namespace, name, verbs, crons)
    subject = client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=name),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=name
            ),
            subjects=[subject],
        ),
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    answer = core.create_namespaced_service_account_token(name, namespace, request)
    token: str = answer.status.token
    return token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(crds: None, kubeconfig: Path, k8s_api: Any) -> Iterator[Server]:
    from kubernetes import client

    core = client.CoreV1Api(k8s_api)
    suffix = secrets.token_hex(3)
    namespaces = {"a": f"t-server-a-{suffix}", "b": f"t-server-b-{suffix}"}
    for ns in namespaces.values():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    tokens = {
        "a": _user(k8s_api, namespaces["a"], "user-a", WRITE, crons=True),
        "b": _user(k8s_api, namespaces["b"], "user-b", READ, crons=False),
    }
    port = _free_port()
    log = Path(tempfile.mkstemp(prefix="shoal-server-", suffix=".log")[1])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "shoal.cli.main", "server", "--port", str(port)]
    argv += ["--kubeconfig", str(kubeconfig), "--log-level", "DEBUG"]
    with log.open("ab") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        return False

    try:
        wait_until(up, 60, "shoal server to answer /healthz")
        yield Server(url, log, tokens, namespaces)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for ns in namespaces.values():
            with contextlib.suppress(Exception):
                core.delete_namespace(ns, propagation_policy="Background")


def _created(k8s_api: Any, namespace: str, name: str, **labels: str) -> str:
    create_workflow(k8s_api, namespace, workflow(name, **labels))
    return name


def test_no_token_is_401_and_a_forged_one_too(server: Server) -> None:
    ns = server.namespaces["a"]
    missing = server.call("GET", f"/api/v1/workflows?namespace={ns}", None)
    assert missing.status_code == 401
    assert missing.json()["code"] == "Unauthorized"
    forged = server.call(
        "GET", f"/api/v1/workflows?namespace={ns}", None, headers={"Authorization": "Bearer x"}
    )
    assert forged.status_code == 401
    # Security headers on every response, refusals included.
    for response in (missing, forged):
        assert response.headers["content-security-policy"] == (
            "default-src 'self'; frame-ancestors 'none'"
        )
        assert response.headers["x-content-type-options"] == "nosniff"


def test_each_user_reads_only_what_rbac_allows(server: Server, k8s_api: Any) -> None:
    a, b = server.namespaces["a"], server.namespaces["b"]
    _created(k8s_api, a, "mine-a")
    _created(k8s_api, b, "mine-b")
    listed = server.call("GET", f"/api/v1/workflows?namespace={a}", "a")
    assert listed.status_code == 200, listed.text
    assert "mine-a" in {row["metadata"]["name"] for row in listed.json()["items"]}
    assert server.call("GET", f"/api/v1/workflows?namespace={b}", "b").status_code == 200
    got = server.call("GET", f"/api/v1/workflows/{b}/mine-b", "b")
    assert got.status_code == 200
    assert got.json()["status"]["phase"] == "Pending"  # the typed status, read as stored
    for user, path in (
        ("a", f"/api/v1/workflows?namespace={b}"),
        ("a", f"/api/v1/workflows/{b}/mine-b"),
        ("b", f"/api/v1/workflows?namespace={a}"),
        ("a", "/api/v1/workflows"),  # every namespace: a cluster-wide list
    ):
        denied = server.call("GET", path, user)
        assert denied.status_code == 403, (user, path, denied.text)
        assert denied.json()["code"] == "Forbidden"
        assert "workflows" in denied.json()["message"]
        assert any(verb in denied.json()["message"] for verb in ("list", "get"))


def test_list_is_paged_and_filtered(server: Server, k8s_api: Any) -> None:
    a = server.namespaces["a"]
    for index in range(3):
        _created(k8s_api, a, f"paged-{index}", batch="paged")
    _created(k8s_api, a, "other", batch="other")
    query = f"/api/v1/workflows?namespace={a}&labelSelector=batch%3Dpaged&limit=2"
    first = server.call("GET", query, "a").json()
    assert len(first["items"]) == 2
    assert first["continue"]
    rest = server.call("GET", f"{query}&continue={first['continue']}", "a").json()
    names = {row["metadata"]["name"] for row in first["items"] + rest["items"]}
    assert names == {"paged-0", "paged-1", "paged-2"}
    prefixed = server.call("GET", f"/api/v1/workflows?namespace={a}&namePrefix=oth", "a")
    assert [row["metadata"]["name"] for row in prefixed.json()["items"]] == ["other"]
    assert (
        server.call("GET", f"/api/v1/workflows?namespace={a}&limit=100000", "a").status_code == 400
    )


def test_stop_through_the_api_is_seen_by_kubectl(
    server: Server, k8s_api: Any, kubectl: Kubectl
) -> None:
    a, b = server.namespaces["a"], server.namespaces["b"]
    _created(k8s_api, a, "to-stop")
    _created(k8s_api, b, "not-yours")
    refused = server.call("POST", f"/api/v1/workflows/{b}/not-yours/stop", "b")
    assert refused.status_code == 403
    assert "patch" in refused.json()["message"]
    stopped = server.call("POST", f"/api/v1/workflows/{a}/to-stop/stop", "a")
    assert stopped.status_code == 200, stopped.text
    seen = kubectl("get", "workflow", "to-stop", "-o", "jsonpath={.spec.stop}", namespace=a)
    assert seen.stdout == "true"
    untouched = kubectl("get", "workflow", "not-yours", "-o", "jsonpath={.spec.stop}", namespace=b)
    assert untouched.stdout == ""


def test_submit_validates_like_shoal_validate(server: Server, kubectl: Kubectl) -> None:
    a, b = server.namespaces["a"], server.namespaces["b"]
    cycle = """
apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata: {name: cyclic}
spec:
  nodes:
    - {name: one, image: busybox, command: ["true"], dependsOn: [two]}
    - {name: two, image: busybox, command: ["true"], dependsOn: [one]}
"""
    yaml_type = {"Content-Type": "application/yaml"}
    invalid = server.call("POST", f"/api/v1/workflows/{a}", "a", content=cycle, headers=yaml_type)
    assert invalid.status_code == 422
    assert invalid.json()["field"] == "dependsOn"
    assert invalid.json()["node"] in {"one", "two"}
    assert "cycle" in invalid.json()["message"]
    absent = kubectl("get", "workflow", "cyclic", namespace=a, check=False)
    assert absent.returncode != 0
    valid = workflow("submitted")
    created = server.call("POST", f"/api/v1/workflows/{a}", "a", json=valid)
    assert created.status_code == 201, created.text
    assert kubectl("get", "workflow", "submitted", "-o", "name", namespace=a).stdout.strip()
    denied = server.call("POST", f"/api/v1/workflows/{b}", "b", json=valid)
    assert denied.status_code == 403
    assert "create" in denied.json()["message"]


def test_delete_and_cron_suspend_as_rbac_allows(
    server: Server, k8s_api: Any, kubectl: Kubectl
) -> None:
    from kubernetes import client

    a, b = server.namespaces["a"], server.namespaces["b"]
    _created(k8s_api, a, "doomed")
    _created(k8s_api, b, "kept")
    assert server.call("DELETE", f"/api/v1/workflows/{b}/kept", "b").status_code == 403
    assert server.call("DELETE", f"/api/v1/workflows/{a}/doomed", "a").status_code == 200
    gone = kubectl("get", "workflow", "doomed", namespace=a, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr
    cron = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "workflowSpec": workflow("x")["spec"]},
    }
    client.CustomObjectsApi(k8s_api).create_namespaced_custom_object(
        "shoal.dev", "v1alpha1", a, "cronworkflows", cron
    )
    listed = server.call("GET", f"/api/v1/cronworkflows?namespace={a}", "a")
    assert [row["metadata"]["name"] for row in listed.json()["items"]] == ["nightly"]
    assert server.call("GET", f"/api/v1/cronworkflows?namespace={b}", "b").status_code == 403
    suspended = server.call("POST", f"/api/v1/cronworkflows/{a}/nightly/suspend", "a")
    assert suspended.status_code == 200, suspended.text
    seen = kubectl("get", "cronworkflow", "nightly", "-o", "jsonpath={.spec.suspend}", namespace=a)
    assert seen.stdout == "true"
    assert server.call("POST", f"/api/v1/cronworkflows/{a}/nightly/resume", "a").status_code == 200
    seen = kubectl("get", "cronworkflow", "nightly", "-o", "jsonpath={.spec.suspend}", namespace=a)
    assert seen.stdout == "false"


def test_tokens_never_reach_the_log_or_a_response(server: Server) -> None:
    """Runs last in this module: every response the tests above got is searched."""
    server.call("GET", f"/api/v1/workflows?namespace={server.namespaces['b']}", "a")
    assert len(server.seen) > 10
    log = server.log.read_text(errors="replace")
    assert "GET /api/v1/workflows" in log  # the log is there, at DEBUG, and says things
    for token in server.tokens.values():
        assert token not in log
        assert token[-16:] not in log
        for response in server.seen:
            assert token[-16:] not in response.text
            assert all(token[-16:] not in value for value in response.headers.values())
