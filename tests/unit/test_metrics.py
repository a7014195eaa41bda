"""The operator's /metrics, /healthz and /readyz endpoints."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.api.workflow import NodePhase, WorkflowPhase
from shoal.core.memo import MemoLookup
from shoal.core.state import RunState
from shoal.kube.api_routes import RouteCounter
from shoal.kube.metrics import Metrics


class FakeApi:
    requests = 12
    writes = 5

    def __init__(self) -> None:
        self.routes = RouteCounter()
        self.routes.add("POST", "/apis/batch/v1/namespaces/a/jobs")
        self.routes.add("POST", "/apis/batch/v1/namespaces/b/jobs")
        self.routes.add("GET", "/api/v1/namespaces/a/pods/p-1/log")


@pytest.fixture
async def client_and_metrics() -> tuple[TestClient, Metrics]:  # type: ignore[misc]
    metrics = Metrics()
    client = TestClient(TestServer(metrics.app()))
    await client.start_server()
    yield client, metrics
    await client.close()


async def test_ready_only_after_connecting(client_and_metrics: tuple[TestClient, Metrics]) -> None:
    client, metrics = client_and_metrics
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 503
    metrics.bind_api(FakeApi())  # type: ignore[arg-type]
    assert (await client.get("/readyz")).status == 200


async def test_readyz_says_what_is_degraded_while_still_ready(
    client_and_metrics: tuple[TestClient, Metrics],
) -> None:
    """An unreachable archive does not stop Workflows, so the operator stays ready, but
    /readyz says what is missing instead of a bare 'ready'."""
    client, metrics = client_and_metrics
    metrics.bind_api(FakeApi())  # type: ignore[arg-type]
    problems = ["archive: ConnectionRefusedError: refused (writes buffered)"]
    metrics.degraded_source = lambda: problems
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert await resp.text() == "ready, degraded: " + problems[0]
    problems.clear()
    assert await (await client.get("/readyz")).text() == "ready"


async def test_metrics_report_runs_nodes_latency_and_requests(
    client_and_metrics: tuple[TestClient, Metrics],
) -> None:
    client, metrics = client_and_metrics
    metrics.bind_api(FakeApi())  # type: ignore[arg-type]
    metrics.pods_source = lambda: 7
    state = RunState.new(["a", "b"])
    state.phase = WorkflowPhase.FAILED
    state.nodes["a"].phase, state.nodes["a"].started_at, state.nodes["a"].finished_at = (
        NodePhase.SUCCEEDED,
        10.0,
        12.5,
    )
    state.nodes["b"].phase = NodePhase.FAILED
    metrics.workflow_finished(state)
    metrics.dispatch_latency.observe(0.02)
    text = await (await client.get("/metrics")).text()
    assert 'shoal_workflows_finished_total{phase="Failed"} 1.0' in text
    assert 'shoal_nodes_finished_total{phase="Succeeded"} 1.0' in text
    assert 'shoal_nodes_finished_total{phase="Failed"} 1.0' in text
    assert "shoal_node_duration_seconds_sum 2.5" in text
    assert "shoal_dispatch_latency_seconds_count 1.0" in text
    assert "shoal_pods_running 7.0" in text
    assert 'shoal_api_requests{kind="write"} 5.0' in text
    # by route: namespaces and names are not labels (bounded), verbs and resources are
    assert 'shoal_api_requests_by_route{route="POST jobs"} 2.0' in text
    assert 'shoal_api_requests_by_route{route="GET pods/{name}/log"} 1.0' in text


async def test_metrics_count_memo_hits_and_misses(
    client_and_metrics: tuple[TestClient, Metrics],
) -> None:
    client, metrics = client_and_metrics
    state = RunState.new(["a", "b", "c"])
    state.phase = WorkflowPhase.SUCCEEDED
    state.memo["a"] = MemoLookup("k1", done=True, outputs={"x": 1})
    state.memo["b"] = MemoLookup("k2", done=True, outputs=None)
    state.memo["c"] = MemoLookup("k3")  # never answered: neither
    metrics.workflow_finished(state)
    text = await (await client.get("/metrics")).text()
    assert 'shoal_memo_lookups_total{result="hit"} 1.0' in text
    assert 'shoal_memo_lookups_total{result="miss"} 1.0' in text
