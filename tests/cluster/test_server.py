"""`shoal server` on the real control plane: Kubernetes RBAC decides every request.

Two ServiceAccounts with tokens from the TokenRequest API: user A may read and write
Workflows (and CronWorkflows) in namespace A only; user B may only read Workflows in
namespace B. One server (client auth mode) serves the whole module; no operator runs, as
nothing here needs a Workflow to make progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import (
    GROUP,
    PLURAL,
    REPO,
    VERSION,
    create_workflow,
    custom,
    wait_until,
)
from tests.support.plugin import Kubectl

pytestmark = [pytest.mark.cluster]

WRITE = ["get", "list", "watch", "create", "patch", "update", "delete"]
READ = ["get", "list", "watch"]
CLEAN = ["list", "watch", "delete", "deletecollection"]
"""On Jobs and pods: what a retry needs to remove the old attempts."""


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


def _role(rbac: Any, namespace: str, name: str, verbs: list[str], writer: bool) -> None:
    """`verbs` on workflows; a writer also on what retry and logs need, and CronWorkflows."""
    from kubernetes import client

    rule = client.V1PolicyRule
    rules = [rule(api_groups=["shoal.dev"], resources=["workflows"], verbs=verbs)]
    if writer:
        rules += [
            rule(api_groups=["shoal.dev"], resources=["cronworkflows"], verbs=verbs),
            rule(api_groups=["shoal.dev"], resources=["workflows/status"], verbs=["patch"]),
            rule(api_groups=["batch"], resources=["jobs"], verbs=CLEAN),
            rule(api_groups=[""], resources=["pods"], verbs=["get", *CLEAN]),
            rule(api_groups=[""], resources=["pods/log"], verbs=["get"]),
            rule(api_groups=[""], resources=["events"], verbs=["list"]),
        ]
    rbac.create_namespaced_role(
        namespace, client.V1Role(metadata=client.V1ObjectMeta(name=name), rules=rules)
    )


def _user(k8s_api: Any, namespace: str, name: str, verbs: list[str], writer: bool) -> str:
    """A ServiceAccount bound to a Role of `verbs` in its namespace; returns its token."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(k8s_api), client.RbacAuthorizationV1Api(k8s_api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    _role(rbac, namespace, name, verbs, writer)
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
    # Not `t-*`: the session operator watches those, and no operator may run these.
    namespaces = {"a": f"srv-a-{suffix}", "b": f"srv-b-{suffix}"}
    for ns in namespaces.values():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    tokens = {
        "a": _user(k8s_api, namespaces["a"], "user-a", WRITE, writer=True),
        "b": _user(k8s_api, namespaces["b"], "user-b", READ, writer=False),
    }
    try:
        with running_server(kubeconfig) as (url, log):
            yield Server(url, log, tokens, namespaces)
    finally:
        for ns in namespaces.values():
            with contextlib.suppress(Exception):
                core.delete_namespace(ns, propagation_policy="Background")


@contextlib.contextmanager
def running_server(kubeconfig: Path, *extra: str) -> Iterator[tuple[str, Path]]:
    """`shoal server` on a free loopback port, logging at DEBUG; its URL and log file."""
    port = _free_port()
    log = Path(tempfile.mkstemp(prefix="shoal-server-", suffix=".log")[1])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "shoal.cli.main", "server", "--port", str(port)]
    argv += ["--kubeconfig", str(kubeconfig), "--log-level", "DEBUG", *extra]
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
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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


def test_server_auth_mode_acts_as_itself_and_says_so(server: Server, kubeconfig: Path) -> None:
    """Local development: no token needed, the server's own (admin) identity is used."""
    b = server.namespaces["b"]
    with running_server(kubeconfig, "--auth-mode=server") as (url, log):
        listed = httpx.get(f"{url}/api/v1/workflows?namespace={b}", timeout=30)
        assert listed.status_code == 200, listed.text
        assert "AUTH MODE SERVER" in log.read_text()


def test_tokens_never_reach_the_log_or_a_response(server: Server) -> None:
    """Runs last in this module: every response the tests above got is searched too."""
    a, b = server.namespaces["a"], server.namespaces["b"]
    server.call("GET", f"/api/v1/workflows?namespace={b}", "a")
    server.call("GET", f"/api/v1/workflows/{a}/missing", "a")
    server.call("POST", f"/api/v1/workflows/{a}", "a", json={"kind": "Workflow"})
    server.call("POST", f"/api/v1/workflows/{b}/missing/stop", "b")
    assert len(server.seen) >= 4
    log = server.log.read_text(errors="replace")
    assert "GET /api/v1/workflows" in log  # the log is there, at DEBUG, and says things
    for token in server.tokens.values():
        assert token not in log
        assert token[-16:] not in log
        for response in server.seen:
            assert token[-16:] not in response.text
            assert all(token[-16:] not in value for value in response.headers.values())


def _failed(k8s_api: Any, namespace: str, name: str) -> None:
    """Mark a Workflow Failed, as the operator would (no operator runs here)."""
    status = {"phase": "Failed", "progress": "1/1", "nodes": {"hello": {"phase": "Failed"}}}
    custom(k8s_api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": status}
    )


def test_retry_reopens_a_failed_workflow_as_rbac_allows(
    server: Server, k8s_api: Any, kubectl: Kubectl
) -> None:
    a, b = server.namespaces["a"], server.namespaces["b"]
    for namespace, name in ((a, "failed-a"), (b, "failed-b")):
        _created(k8s_api, namespace, name)
        _failed(k8s_api, namespace, name)
    refused = server.call("POST", f"/api/v1/workflows/{b}/failed-b/retry", "b")
    assert refused.status_code == 403, refused.text
    assert "jobs" in refused.json()["message"]
    still = kubectl("get", "workflow", "failed-b", "-o", "jsonpath={.status.phase}", namespace=b)
    assert still.stdout == "Failed"
    retried = server.call("POST", f"/api/v1/workflows/{a}/failed-a/retry", "a")
    assert retried.status_code == 200, retried.text
    assert retried.json()["nodes"] == ["hello"]
    path = "jsonpath={.status.phase} {.status.retries} {.status.nodes.hello.phase}"
    seen = kubectl("get", "workflow", "failed-a", "-o", path, namespace=a)
    assert seen.stdout == "Running 1 Pending"
    again = server.call("POST", f"/api/v1/workflows/{a}/failed-a/retry", "a")
    assert again.status_code == 409
    assert again.json()["code"] == "NotRetryable"


def test_node_log_and_its_bounded_follow(server: Server, k8s_api: Any) -> None:
    from kubernetes import client
    from support.waits import pod_phase, wait_for, wait_for_log_line

    from shoal.kube.naming import LABEL_ATTEMPT, LABEL_ITEM, LABEL_NODE, LABEL_WORKFLOW_UID

    a, b = server.namespaces["a"], server.namespaces["b"]
    uid = create_workflow(k8s_api, a, workflow("logged"))["metadata"]["uid"]
    _created(k8s_api, b, "unlogged")
    labels = {LABEL_WORKFLOW_UID: uid, LABEL_NODE: "hello", LABEL_ITEM: "0", LABEL_ATTEMPT: "1"}
    core = client.CoreV1Api(k8s_api)
    script = "echo first; echo second; exec sleep 60"
    core.create_namespaced_pod(
        a,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="logged-hello", labels=labels),
            spec=client.V1PodSpec(
                restart_policy="Never",
                containers=[
                    client.V1Container(
                        name="main", image="busybox:1.36", command=["sh", "-c", script]
                    )
                ],
            ),
        ),
    )
    wait_for(
        core.list_namespaced_pod,
        a,
        field_selector="metadata.name=logged-hello",
        predicate=pod_phase("Running"),
        timeout=60,
        description="pod logged-hello to run",
    )
    wait_for_log_line(core, a, "logged-hello", "second", container="main")
    log_path = f"/api/v1/workflows/{a}/logged/nodes/hello/log"
    page = server.call("GET", log_path, "a")
    assert page.status_code == 200, page.text
    assert [line["text"] for line in page.json()["lines"]] == ["first", "second"]
    denied = server.call("GET", f"/api/v1/workflows/{b}/unlogged/nodes/hello/log", "b")
    assert denied.status_code == 403
    assert "pods" in denied.json()["message"]
    assert server.call("GET", f"{log_path.replace('hello', 'nope')}", "a").status_code == 404
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {server.tokens['a']}"}
    with httpx.stream(
        "GET", f"{server.url}{log_path}?follow=true&seconds=2", headers=headers, timeout=30
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["x-content-type-options"] == "nosniff"
        events = [
            json.loads(line.removeprefix("data: "))
            for line in stream.iter_lines()
            if line.startswith("data: ")
        ]
    assert [e["text"] for e in events if "text" in e] == ["first", "second"]
    assert events[-1] == {"reason": "deadline"}  # the pod still runs: the stream is bounded
    assert time.monotonic() - started < 15
