"""`POST .../resume` in the REST API: it decides gates as the caller the API server names
(never a name from the body), and refuses what `shoal resume` refuses, with 409."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shoal.server.app import create_app
from shoal.server.identity import AuthMode, Cluster, caller_api

UNREACHABLE = Cluster("https://127.0.0.1:9", False, AuthMode.CLIENT)
PATH = "/api/v1/workflows/ns/wf/resume"


class FakeKube:
    """Answers the three requests a resume makes, and keeps the patch it was sent."""

    def __init__(self, gate_phase: str) -> None:
        self.body: dict[str, Any] = {
            "metadata": {"name": "wf", "namespace": "ns", "uid": "u1"},
            "spec": {"nodes": [{"name": "approve", "suspend": {}}, {"name": "b", "job": "b"}]},
            "status": {"phase": "Running", "nodes": {"approve": {"phase": gate_phase}}},
        }
        self.patches: list[dict[str, Any]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if method == "PATCH":
            self.patches.append(kwargs["body"])
            return self.body
        return self.body

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert path.endswith("/selfsubjectreviews")
        return {"status": {"userInfo": {"username": "alice@example.com"}}}


@pytest.fixture
def client_for() -> Iterator[Any]:
    app = create_app(UNREACHABLE)

    def make(fake: FakeKube) -> TestClient:
        async def as_caller() -> AsyncIterator[FakeKube]:
            yield fake

        app.dependency_overrides[caller_api] = as_caller
        return TestClient(app)

    yield make
    app.dependency_overrides.clear()


def test_resume_approves_the_waiting_gate_as_the_reviewed_caller(client_for: Any) -> None:
    fake = FakeKube("Running")
    answer = client_for(fake).post(PATH, json={"message": "ok", "by": "mallory"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["nodes"] == ["approve"]
    [patch] = fake.patches
    entry = patch["spec"]["approvals"]["approve"]
    assert entry["by"] == "alice@example.com"  # not the body's claim
    assert entry["decision"] == "Approved"
    assert entry["message"] == "ok"


def test_resume_of_a_node_that_is_no_gate_is_409_naming_it(client_for: Any) -> None:
    fake = FakeKube("Running")
    answer = client_for(fake).post(PATH, json={"node": "b", "reject": True})
    assert answer.status_code == 409
    assert "'b'" in answer.json()["message"]
    assert "not an approval gate" in answer.json()["message"]
    assert fake.patches == []


def test_resume_with_nothing_waiting_is_409(client_for: Any) -> None:
    fake = FakeKube("Pending")
    answer = client_for(fake).post(PATH)
    assert answer.status_code == 409
    assert "nothing to resume" in answer.json()["message"]
