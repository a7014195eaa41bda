"""`kubectl apply` of a manifest `shoal validate` refuses fails, with the same message.

Through the real API server: an operator of this module's own serves the webhook with a
throwaway certificate, and a ValidatingWebhookConfiguration (scoped to this module's
namespace, so no other test is affected) sends it the reviews. Each manifest in
tests/cluster/admission/ is applied with kubectl and its refusal compared, line by line,
with what `shoal validate FILE` prints for the same file, minus `FILE:line:column: `.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import REPO, start_operator, wait_until
from tests.support.pki import Authority
from tests.support.plugin import Kubectl
from tests.support.procs import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]

MANIFESTS = Path(__file__).parent / "admission"
REFUSED = [
    "cycle",
    "unknown-dep",
    "bad-cel",
    "undeclared-param",
    "item-outside",
    "bad-schedule",
    "over-budget",
    "unknown-output-node",
    "not-upstream",
    "cron-cycle",
    "foreach-scalar",
    "foreach-param",
    "missing-template",
    "missing-template-node",
]
DENIED = re.compile(r'admission webhook "validate\.shoal\.dev" denied the request: ')


@dataclass(frozen=True)
class Webhook:
    namespace: str
    configuration: str


def throwaway_tls(directory: Path) -> bytes:
    """A CA and a serving certificate for 127.0.0.1 (tls.crt, tls.key) in `directory`;
    returns the CA's PEM, for the caBundle."""
    authority = Authority(directory)
    authority.issue("tls", "127.0.0.1", server=True, ips=("127.0.0.1",))
    return authority.cert_path.read_bytes()


def listening(port: int, ca: bytes) -> bool:
    """Whether the webhook answers TLS on `port` with a certificate the CA signed."""
    import socket

    context = ssl.create_default_context(cadata=ca.decode())
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
            context.wrap_socket(sock, server_hostname="127.0.0.1"),
        ):
            return True
    except OSError:
        return False


def configuration(name: str, namespace: str, port: int, ca: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "validate.shoal.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "timeoutSeconds": 10,
                "failurePolicy": "Fail",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/validate",
                    "caBundle": base64.b64encode(ca).decode(),
                },
                "rules": [
                    {
                        "apiGroups": ["shoal.dev"],
                        "apiVersions": ["*"],
                        "resources": ["workflows", "cronworkflows"],
                        "operations": ["CREATE", "UPDATE"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            }
        ],
    }


@pytest.fixture(scope="module")
def webhook(
    kubectl: Kubectl, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhook]:
    """This module's namespace, operator and webhook (the session's operator skips the
    namespace: its name starts with t-test-own-operator)."""
    tmp = tmp_path_factory.mktemp("admission")
    namespace = f"t-test-own-operator-admission-{secrets.token_hex(3)}"
    name = f"shoal-test-{namespace}"
    ca = throwaway_tls(tmp)
    port = free_port()
    kubectl("create", "namespace", namespace)
    op = start_operator(
        kubeconfig,
        namespace,
        tmp / "operator.log",
        extra_args=[
            "--webhook-cert-dir",
            str(tmp),
            "--webhook-port",
            str(port),
            "--webhook-host",
            "127.0.0.1",
        ],
    )
    try:
        wait_until(lambda: listening(port, ca) or op.proc.poll() is not None, 60, "the webhook")
        assert op.proc.poll() is None, op.output()
        kubectl("apply", "-f", "-", stdin=json.dumps(configuration(name, namespace, port, ca)))
        # The API server picks a new configuration up asynchronously: wait for a refusal.
        probe = str(MANIFESTS / "cycle.yaml")
        wait_until(
            lambda: DENIED.search(
                kubectl(
                    "apply", "--dry-run=server", "-f", probe, namespace=namespace, check=False
                ).stderr
            ),
            30,
            "the API server to call the webhook",
        )
        yield Webhook(namespace, name)
        assert op.proc.poll() is None, f"the operator exited:\n{op.output()}"
    finally:
        kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found", check=False)
        op.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def shoal_validate(path: Path) -> list[str]:
    """What `shoal validate FILE` prints, each line without `error: FILE:line:column: `."""
    proc = subprocess.run(
        [sys.executable, "-m", "shoal.cli.main", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    prefix = re.compile(rf"^error: {re.escape(str(path))}(:\d+:\d+)?: ")
    return [prefix.sub("", line) for line in proc.stderr.splitlines()]


def refusal(kubectl: Kubectl, path: Path, namespace: str) -> list[str]:
    """kubectl apply's exit code and the webhook's message, one line per problem."""
    proc = kubectl("apply", "-f", str(path), namespace=namespace, check=False)
    assert proc.returncode != 0, f"{path.name} was admitted: {proc.stdout}"
    found = DENIED.search(proc.stderr)
    assert found, proc.stderr
    return proc.stderr[found.end() :].rstrip("\n").splitlines()


@pytest.mark.parametrize("case", REFUSED)
def test_apply_refuses_what_shoal_validate_refuses_with_the_same_message(
    case: str, webhook: Webhook, kubectl: Kubectl
) -> None:
    path = MANIFESTS / f"{case}.yaml"
    assert refusal(kubectl, path, webhook.namespace) == shoal_validate(path)
    kind = yaml.safe_load(path.read_text())["kind"].lower()
    gone = kubectl(
        "get", kind, case, "--ignore-not-found", "-o", "name", namespace=webhook.namespace
    )
    assert gone.stdout == ""  # nothing was stored


def test_a_valid_workflow_is_admitted_and_an_update_adding_a_cycle_is_refused(
    webhook: Webhook, kubectl: Kubectl, tmp_path: Path
) -> None:
    valid = MANIFESTS / "valid.yaml"
    kubectl("apply", "-f", str(valid), namespace=webhook.namespace)
    doc = yaml.safe_load(valid.read_text())
    doc["spec"]["nodes"][0]["dependsOn"] = ["b"]  # a -> b -> a
    edited = tmp_path / "valid.yaml"
    edited.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert refusal(kubectl, edited, webhook.namespace) == shoal_validate(edited)
    stored = json.loads(
        kubectl("get", "workflow", "valid", "-o", "json", namespace=webhook.namespace).stdout
    )
    assert "dependsOn" not in stored["spec"]["nodes"][0]  # the stored spec is unchanged
    # The operator's own writes to it (finalizer, annotations) were admitted: it runs it.
    wait_until(
        lambda: (
            json.loads(
                kubectl(
                    "get", "workflow", "valid", "-o", "json", namespace=webhook.namespace
                ).stdout
            )
            .get("status", {})
            .get("phase")
        ),
        60,
        "the operator to take the admitted workflow up",
    )
