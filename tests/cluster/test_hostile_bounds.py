"""Hostile input on the real control plane (issue 13, items 1 and 2).

Each case asserts what the other tenants rely on: the hostile Workflow ends in `Error` or
`Failed` with a message naming the node, the field and the limit; the operator process
stays up; and a canary Workflow in another namespace still succeeds on time.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.api import limits
from tests.cluster.conftest import (
    ArtifactBucket,
    OperatorProcess,
    create_workflow,
    start_operator,
    wait_until,
    wait_workflow,
)
from tests.support.plugin import Kubectl

pytestmark = [pytest.mark.cluster]

HUNDRED = "[" + ",".join(str(i) for i in range(100)) + "]"
CANARY_SECONDS = 120


def workflow(name: str, *nodes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"image": "ghcr.io/shoal-dev/worker:0.1.0", "nodes": list(nodes), **spec},
    }


def nested_all(levels: int) -> str:
    text = "true"
    for var in "abcde"[:levels]:
        text = f"{HUNDRED}.all({var}, {text})"
    return text


def make_namespace(k8s_api: Any, prefix: str, store: ArtifactBucket | None = None) -> Iterator[str]:
    """A second namespace (for the canary), ready for pods, deleted afterwards; with the
    artifact credentials Secret when an operator with a store runs its pods."""
    from kubernetes import client, watch

    core = client.CoreV1Api(k8s_api)
    name = f"{prefix}-{secrets.token_hex(3)}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"shoal.dev/test": "1"}))
    )
    try:
        for _ in watch.Watch().stream(
            core.list_namespaced_service_account,
            name,
            field_selector="metadata.name=default",
            timeout_seconds=30,
        ):
            break
        if store is not None:
            store.create_credentials_secret(core, name)
        yield name
    finally:
        with contextlib.suppress(Exception):
            core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def canary_namespace(k8s_api: Any, artifact_store: ArtifactBucket) -> Iterator[str]:
    """Watched by the session operator (`t-*`)."""
    yield from make_namespace(k8s_api, "t-canary", artifact_store)


def run_canary(k8s_api: Any, namespace: str) -> None:
    """A plain Workflow in another namespace succeeds within CANARY_SECONDS."""
    name = f"canary-{secrets.token_hex(3)}"
    create_workflow(k8s_api, namespace, workflow(name, {"name": "c", "job": "shoal.noop"}))
    body = wait_workflow(k8s_api, namespace, name, timeout=CANARY_SECONDS)
    assert body["status"]["phase"] == "Succeeded", body["status"]


def jsonpath(kubectl: Kubectl, namespace: str, name: str, path: str) -> str:
    """A field of a Workflow read by kubectl (Go): the Python client cannot decode a
    3,000-deep object, which is the point of the test."""
    proc = kubectl("get", "workflow", name, "-o", f"jsonpath={path}", namespace=namespace)
    return proc.stdout


@pytest.mark.parametrize("levels", [150, 900, 3000])
def test_deep_args_fail_only_their_workflow(
    levels: int,
    shoal_operator: OperatorProcess,
    operator_log: None,
    kubectl: Kubectl,
    k8s_api: Any,
    namespace: str,
    canary_namespace: str,
) -> None:
    # Before: the operator's watch died with RecursionError decoding this object, and again
    # after every restart, so no Workflow in any namespace progressed.
    deep = '{"a":' * levels + "1" + "}" * levels
    doc = workflow("deep", {"name": "deep", "job": "shoal.noop", "args": {"x": "DEEP"}})
    text = json.dumps(doc).replace('"DEEP"', deep)
    created = kubectl("create", "-f", "-", namespace=namespace, stdin=text, check=False)
    if created.returncode != 0:  # refused at admission: the field must be named
        assert "args" in created.stderr, created.stderr
    else:
        wait_until(
            lambda: jsonpath(kubectl, namespace, "deep", "{.status.phase}") == "Error",
            60,
            "the deep Workflow to be in Error",
        )
        message = jsonpath(kubectl, namespace, "deep", "{.status.message}")
        limit = limits.MAX_JSON_DEPTH
        assert f"node 'deep': args: nests deeper than {limit} levels (limit {limit})" in message
        events = kubectl(
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=deep,reason=Invalid",
            "-o",
            "jsonpath={.items[*].message}",
            namespace=namespace,
        ).stdout
        assert "nests deeper than" in events
    run_canary(k8s_api, canary_namespace)
    assert shoal_operator.proc.poll() is None, shoal_operator.output()
    assert "RecursionError" not in shoal_operator.output()


def test_hostile_when_fails_only_its_workflow(
    shoal_operator: OperatorProcess,
    operator_log: None,
    k8s_api: Any,
    namespace: str,
    canary_namespace: str,
) -> None:
    # Before: this compiled, and evaluating it ran for hours on the operator's event loop.
    doc = workflow(
        "hostile",
        {"name": "first", "job": "shoal.noop"},
        {"name": "gate", "job": "shoal.noop", "dependsOn": ["first"], "when": nested_all(5)},
    )
    create_workflow(k8s_api, namespace, doc)
    body = wait_workflow(k8s_api, namespace, "hostile", timeout=60)
    status = body["status"]
    assert status["phase"] == "Error", status
    limit = limits.MAX_COMPREHENSION_NESTING
    assert "node 'gate': when: bad expression:" in status["message"]
    assert f"nest 5 deep (limit {limit})" in status["message"]
    run_canary(k8s_api, canary_namespace)
    assert shoal_operator.proc.poll() is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HealthProbe:
    """Asks `/healthz` every 100 ms in a thread, recording the slowest answer and failures."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/healthz"
        self.slowest = 0.0
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    ok = resp.status == 200
            except OSError as err:
                self.failures.append(repr(err))
            else:
                self.answers += 1
                if not ok:
                    self.failures.append("status != 200")
            self.slowest = max(self.slowest, time.monotonic() - started)
            self._stop.wait(0.1)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_own_operator_expression_over_budget_fails_its_node_and_healthz_answers(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    # An expression that passes the static limits but whose work depends on its data:
    # two nested all() over 20,000 parameters are 400 million steps (minutes of CEL).
    # Its own operator, to reach /healthz on a known port; it watches the test's namespace
    # and the canary's (`<namespace>-canary-...`), which the session operator leaves alone.
    canary_ns = next(other := make_namespace(k8s_api, f"{namespace}-canary"))
    port = _free_port()
    log = tmp_path / "operator.log"
    op = start_operator(kubeconfig, f"{namespace}*", log, extra_args=["--metrics-port", str(port)])
    try:
        wait_until(lambda: _healthy(port), 60, "the operator's /healthz")
        doc = workflow(
            "slow",
            {"name": "first", "job": "shoal.noop"},
            {
                "name": "gate",
                "job": "shoal.noop",
                "dependsOn": ["first"],
                "when": "params.xs.all(a, params.xs.all(b, a + b >= 0))",
            },
            {"name": "other", "job": "shoal.noop", "dependsOn": ["first"]},
            parameters={"xs": list(range(20000))},
        )
        with HealthProbe(port) as probe:
            create_workflow(k8s_api, namespace, doc)
            run_canary(k8s_api, canary_ns)
            body = wait_workflow(k8s_api, namespace, "slow", timeout=120)
        status = body["status"]
        assert status["phase"] == "Failed", status
        gate = status["nodes"]["gate"]
        budget = limits.EXPRESSION_TIMEOUT_SECONDS
        assert gate["phase"] == "Failed"
        assert gate["message"].startswith("when: ")
        assert f"exceeded the time budget of {budget:g}s" in gate["message"]
        assert status["nodes"]["other"]["phase"] == "Succeeded"
        assert probe.failures == [], probe.failures
        assert probe.answers > 0
        # An evaluation holds the loop for at most the budget; allow for a busy machine.
        assert probe.slowest < budget + 3, probe.slowest
        assert op.proc.poll() is None, op.output()
    finally:
        op.stop()
        print(f"operator log tail:\n{op.output()[-6000:]}")  # shown when the test fails
        with contextlib.suppress(StopIteration):
            next(other)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
