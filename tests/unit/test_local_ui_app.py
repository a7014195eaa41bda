"""`shoal run --ui`'s routes over a local run: `shoal server`'s shapes, read-only, bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoal.api.workflow import WorkflowPhase
from shoal.core.state import RunState
from shoal.core.status import render_status
from shoal.local.logs import NodeLogs
from shoal.server.headers import SECURITY_HEADERS
from shoal.server.local_app import LocalRun, create_local_app
from tests.unit.simulator import workflow


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    wf = workflow(
        {"name": "one"}, {"name": "many", "forEach": [1, 2], "itemArg": "n", "dependsOn": ["one"]}
    )
    state = RunState.new(list(wf.order))
    state.phase = WorkflowPhase.RUNNING
    logs = NodeLogs(tmp_path)
    log = logs.attempt("one", 0, 1, fan_out=False)
    log.write("hello\n")
    logs.flush("one")
    run = LocalRun(
        wf=wf, state=lambda: state, log_path=logs.path, created_at="2026-01-01T00:00:00Z"
    )
    app = create_local_app(run, ui=False)
    app.state.run_state = state
    app.state.wf = wf
    return TestClient(app)


def test_the_run_in_the_servers_shapes(client: TestClient) -> None:
    state: RunState = client.app.state.run_state  # type: ignore[attr-defined]
    wf = client.app.state.wf  # type: ignore[attr-defined]
    page = client.get("/api/v1/workflows").json()
    (row,) = page["items"]
    assert (row["metadata"]["namespace"], row["metadata"]["name"]) == ("default", "wf")
    assert row["phase"] == "Running"
    assert page["continue"] is None
    for params in ({"namespace": "other"}, {"phase": "Failed"}, {"namePrefix": "x"}):
        assert client.get("/api/v1/workflows", params=params).json()["items"] == []
    body = client.get("/api/v1/workflows/default/wf").json()
    assert body["status"]["phase"] == "Running"
    expected = render_status(wf, state, limits=False)
    assert body["status"]["progress"] == expected.progress
    assert {n: v["phase"] for n, v in body["status"]["nodes"].items()} == {
        n: v.phase.value for n, v in expected.nodes.items()
    }
    assert set(body["status"]["nodes"]) == {"one", "many"}
    assert [n["name"] for n in body["spec"]["nodes"]] == ["one", "many"]


def test_errors_and_headers(client: TestClient) -> None:
    resp = client.get("/api/v1/workflows/default/other")
    assert (resp.status_code, resp.json()["code"]) == (404, "NotFound")
    for key, value in SECURITY_HEADERS.items():
        assert resp.headers[key] == value
    resp = client.get("/api/v1/workflows/default/wf/nodes/ghost/log")
    assert resp.status_code == 404
    assert "ghost" in resp.json()["message"]
    resp = client.get("/api/v1/workflows/default/wf/nodes/many/log")
    assert (resp.status_code, resp.json()["message"]) == (
        404,
        "node 'many' has no log (not started)",
    )
    resp = client.get("/api/v1/workflows/default/wf/nodes/one/log", params={"tail": 0})
    assert (resp.status_code, resp.json()["field"]) == (400, "tail")
    # Read-only: no action route exists.
    assert client.post("/api/v1/workflows/default/wf/stop").status_code in (404, 405)
    assert client.delete("/api/v1/workflows/default/wf").status_code == 405
    # No UI files shipped: the API only.
    assert client.get("/").status_code == 404


def test_a_node_log(client: TestClient) -> None:
    page = client.get("/api/v1/workflows/default/wf/nodes/one/log").json()
    assert page == {
        "lines": [{"pod": "local:one:0:1", "item": 0, "attempt": 1, "text": "hello"}],
        "pods": 1,
        "truncated": False,
    }


def test_the_dashboard_is_served_and_told_no_token_is_needed(tmp_path: Path) -> None:
    wf = workflow({"name": "one"})
    state = RunState.new(list(wf.order))
    run = LocalRun(
        wf=wf,
        state=lambda: state,
        log_path=NodeLogs(tmp_path).path,
        created_at="2026-01-01T00:00:00Z",
    )
    local = TestClient(create_local_app(run))
    page = local.get("/")
    assert page.status_code == 200
    assert "<script" in page.text
    assert local.get("/ui/app.js").status_code == 200
    assert local.get("/api/v1/session").json() == {"authRequired": False}
