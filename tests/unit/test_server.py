"""`shoal server` without a cluster: what it refuses before Kubernetes is ever asked.

The Kubernetes address below is unreachable on purpose: a test that passes proves the
request was answered (401, 400, 413, 422) without calling the API server. RBAC itself is
tested on the real control plane (tests/cluster/test_server.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoal.cli.server_command import is_loopback
from shoal.kube.api import ApiError
from shoal.server.app import OPENAPI_PATH, create_app
from shoal.server.errors import from_kube
from shoal.server.identity import AuthMode, Cluster
from shoal.server.submit import MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = Cluster("https://127.0.0.1:9", False, AuthMode.CLIENT)
TOKEN = {"Authorization": "Bearer a-token"}
CYCLE = """apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata: {name: cyclic}
spec:
  nodes:
    - {name: one, image: busybox, command: ["true"], dependsOn: [two]}
    - {name: two, image: busybox, command: ["true"], dependsOn: [one]}
"""


@pytest.fixture(scope="module")
def api() -> TestClient:
    return TestClient(create_app(UNREACHABLE))


def test_openapi_document_is_served_and_every_path_is_documented(api: TestClient) -> None:
    document = api.get(OPENAPI_PATH).json()
    docs = (ROOT / "docs" / "dashboard.md").read_text()
    routes = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert len(routes) >= 11
    for method, path in routes:
        assert path.startswith("/api/v1/")
        assert f"`{method} {path}`" in docs, f"docs/dashboard.md does not list {method} {path}"
    assert "docs/dashboard.md" in (ROOT / "README.md").read_text()


def test_no_token_is_401_in_the_error_shape_with_security_headers(api: TestClient) -> None:
    for method, path in (
        ("GET", "/api/v1/workflows"),
        ("POST", "/api/v1/workflows/ns/wf/stop"),
        ("GET", "/api/v1/cronworkflows/ns/cw"),
    ):
        response = api.request(method, path, headers={"Authorization": "Basic dTpw"})
        assert response.status_code == 401
        assert response.json()["code"] == "Unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    nowhere = api.get("/api/v1/nowhere")
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "NotFound")
    wrong = api.put("/api/v1/workflows", headers=TOKEN)
    assert (wrong.status_code, wrong.json()["code"]) == (405, "MethodNotAllowed")
    for response in (api.get("/api/v1/workflows"), api.get(OPENAPI_PATH), nowhere, wrong):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"


def test_submit_reports_what_shoal_validate_reports(api: TestClient, tmp_path: Path) -> None:
    response = api.post(
        "/api/v1/workflows/ns",
        content=CYCLE,
        headers={**TOKEN, "Content-Type": "application/yaml"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "Invalid"
    assert (body["node"], body["field"]) in {("one", "dependsOn"), ("two", "dependsOn")}
    assert body["line"] is not None
    path = tmp_path / "cyclic.yaml"
    path.write_text(CYCLE)
    validate = subprocess.run(
        [sys.executable, "-m", "shoal.cli.main", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert validate.returncode == 2
    printed = [
        re.sub(rf"^error: {re.escape(str(path))}(:\d+:\d+)?: ", "", line)
        for line in validate.stderr.splitlines()
    ]
    assert printed
    assert [p["message"] for p in body["problems"]] == printed
    assert "cycle" in body["message"]


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        ("kind: Workflow\n---\nkind: Workflow\n", 422, None),
        ('{"kind": "Workflow", "metadata": {"namespace": "other"}}', 422, "metadata.namespace"),
        ("kind: [unclosed", 422, None),
        (b"\xff\xfe not utf-8", 422, None),
        ("#" * (MAX_BODY_BYTES + 1), 413, None),
    ],
)
def test_submit_refuses_bad_bodies_before_kubernetes(
    api: TestClient, content: str | bytes, status: int, field: str | None
) -> None:
    response = api.post("/api/v1/workflows/ns", content=content, headers=TOKEN)
    assert response.status_code == status, response.text
    assert response.json().get("field") == field


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/workflows?limit=100000",
        "/api/v1/workflows?namespace=Not_A_Namespace",
        "/api/v1/workflows/ns/UPPER",
        "/api/v1/workflows/ns/wf/nodes/a,b/log",
        "/api/v1/workflows/ns/wf/nodes/a/log?seconds=100000",
    ],
)
def test_parameters_that_could_reshape_a_kubernetes_request_are_refused(
    api: TestClient, path: str
) -> None:
    response = api.get(path, headers=TOKEN)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "BadRequest"


def test_kubernetes_refusals_keep_their_status_and_message() -> None:
    message = 'User "u" cannot list resource "workflows" in API group "shoal.dev"'
    forbidden = from_kube(ApiError(403, "Forbidden", message))
    assert (forbidden.status, forbidden.body.code, forbidden.body.message) == (
        403,
        "Forbidden",
        message,
    )
    assert from_kube(ApiError(500, "InternalError", "boom")).status == 502


def test_server_auth_mode_refuses_anything_but_loopback() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.0.0.1")
    refused = subprocess.run(
        [sys.executable, "-m", "shoal.cli.main", "server", "--auth-mode=server", "--host=0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "loopback" in refused.stderr
