"""The admission webhook's decision and its bounds (the API-server path: tests/cluster).

The decision is `shoal validate`'s compile: the same messages without file:line:column.
The server must answer every request, however hostile, with a decision or an HTTP
error, and never hold the event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from shoal.admission_check import MalformedReview, Review, parse_review, review
from shoal.core.validation import InvalidWorkflow
from shoal.kube.admission import MAX_BODY_BYTES, PATH, Reviewer, WebhookConfig, make_app, serve
from shoal.manifests import compile_manifest, load_file
from tests.support.pki import Authority

VALID = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "etl", "namespace": "team", "uid": "u-1", "resourceVersion": "7"},
    "spec": {
        "image": "worker:1",
        "nodes": [{"name": "a", "job": "j"}, {"name": "b", "job": "j", "dependsOn": ["a"]}],
    },
}


def with_nodes(*nodes: dict[str, Any], base: dict[str, Any] = VALID) -> dict[str, Any]:
    return {**base, "spec": {**base["spec"], "nodes": list(nodes)}}


CYCLE = with_nodes(
    {"name": "a", "job": "j", "dependsOn": ["b"]}, {"name": "b", "job": "j", "dependsOn": ["a"]}
)


def validate_lines(obj: dict[str, Any], tmp_path: Path) -> list[str]:
    """What `shoal validate FILE` reports for `obj`, without `FILE:line:column: `."""
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(obj), encoding="utf-8")
    try:
        for manifest in load_file(path):
            compile_manifest(manifest)
    except InvalidWorkflow as err:
        return [
            re.sub(rf"^{re.escape(str(path))}(:\d+:\d+)?: ", "", line)
            for line in str(err).splitlines()
        ]
    return []


def request(obj: Any, old: Any = None, operation: str = "CREATE") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "r-1",
            "kind": {"group": "shoal.dev", "version": "v1alpha1", "kind": "Workflow"},
            "operation": operation,
            "namespace": "team",
            "name": "etl",
            "object": obj,
            "oldObject": old,
        },
    }


@pytest.mark.parametrize(
    "obj",
    [
        CYCLE,
        with_nodes(
            {"name": "load", "job": "j", "dependsOn": ["extrct"]}, {"name": "extract", "job": "j"}
        ),
        with_nodes({"name": "a", "job": "j", "args": {"x": "${{ params.regoin }}"}}),
        with_nodes({"name": "a", "job": "j", "when": "1 +"}),
    ],
    ids=["cycle", "unknown-dependency", "undeclared-parameter", "bad-cel"],
)
def test_a_create_is_refused_with_the_messages_shoal_validate_prints(
    obj: dict[str, Any], tmp_path: Path
) -> None:
    expected = validate_lines(obj, tmp_path)
    assert expected  # the case is one `shoal validate` refuses
    decision = review("CREATE", obj)
    assert not decision.allowed
    assert list(decision.problems) == expected


def test_a_valid_create_is_admitted() -> None:
    assert review("CREATE", VALID).allowed


def test_an_update_that_introduces_a_cycle_is_refused() -> None:
    decision = review("UPDATE", CYCLE, VALID)
    assert decision.problems == ("node 'a': dependsOn: dependency cycle: a -> b -> a",)


def test_the_operators_metadata_writes_and_deletion_of_an_invalid_object_are_admitted() -> None:
    # Created before the webhook existed: finalizers, annotations and deletion must pass,
    # or the object could never be stopped or deleted.
    patched = {**CYCLE, "metadata": {**CYCLE["metadata"], "finalizers": ["shoal.dev/finalizer"]}}
    assert review("UPDATE", patched, CYCLE).allowed
    stopped = {**CYCLE, "spec": {**CYCLE["spec"], "stop": True}}
    assert review("UPDATE", stopped, CYCLE).allowed
    assert review("DELETE", CYCLE).allowed


def test_the_review_answer_names_the_request_and_carries_every_problem() -> None:
    parsed = parse_review(json.dumps(request(CYCLE)).encode())
    answer = parsed.response(parsed.decide())
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["response"]["uid"] == "r-1"
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 422
    assert "dependency cycle" in answer["response"]["status"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"apiVersion": "v1", "request": {}}).encode(),
        b'{"apiVersion": "admission.k8s.io/v1", "request": {"uid": 3}}',
    ],
)
def test_a_body_that_is_no_admission_review_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedReview):
        parse_review(body)


def test_an_object_nested_thousands_deep_is_refused_not_a_crash() -> None:
    # Built as text: Python's own encoder cannot write it either.
    obj = with_nodes({"name": "a", "job": "j", "args": {"deep": "DEEP"}})
    body = json.dumps(request(obj)).replace('"DEEP"', "[" * 5000 + "1" + "]" * 5000)
    parsed = parse_review(body.encode())
    decision = parsed.decide()
    assert not decision.allowed
    assert any("deep" in p for p in decision.problems)


async def post(client: TestClient[Any, Any], body: bytes) -> tuple[int, Any]:
    async with client.post(PATH, data=body, headers={"Content-Type": "application/json"}) as r:
        text = await r.text()
        return r.status, json.loads(text) if r.status == 200 else text


async def test_the_server_answers_a_refusal_and_refuses_an_oversized_body() -> None:
    async with TestClient(TestServer(make_app(Reviewer()))) as client:
        status, answer = await post(client, json.dumps(request(CYCLE)).encode())
        assert status == 200
        assert answer["response"]["allowed"] is False
        status, _ = await post(client, b" " * (MAX_BODY_BYTES + 1))
        assert status == 413
        status, _ = await post(client, b"{}")
        assert status == 400


async def test_a_compile_past_the_deadline_is_an_error_and_the_loop_stays_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    monkeypatch.setattr(Review, "decide", lambda self, templates=None: release.wait(30))
    try:
        app = make_app(Reviewer(slots=1), decision_seconds=0.5)
        async with TestClient(TestServer(app)) as client:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            status, _ = await post(client, json.dumps(request(VALID)).encode())
            assert status == 503  # the API server then applies the failurePolicy
            # The hung compile still holds the only slot: the next request waits for it
            # within its own deadline instead of starting another thread.
            status, _ = await post(client, json.dumps(request(VALID)).encode())
            assert status == 503
            ticker.cancel()
            assert ticks > 20  # the event loop ran all along
    finally:
        release.set()


async def test_a_port_in_use_leaves_the_operator_running_without_the_webhook(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Authority(tmp_path).issue("tls", "127.0.0.1", server=True, ips=("127.0.0.1",))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = WebhookConfig(tmp_path, port=port, host="127.0.0.1")
        entered = False
        async with serve(config):  # no exception: the block (the operator) runs
            entered = True
    assert entered
    assert f"admission webhook not served: cannot listen on port {port}" in caplog.text


async def test_the_webhook_serves_https_with_the_given_certificate(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    authority.issue("tls", "127.0.0.1", server=True, ips=("127.0.0.1",))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = ssl.create_default_context(cafile=str(authority.cert_path))
    async with serve(WebhookConfig(tmp_path, port=port, host="127.0.0.1")):
        connector = aiohttp.TCPConnector(ssl=context)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(f"https://127.0.0.1:{port}{PATH}", json=request(CYCLE)) as answer,
        ):
            body = await answer.json()
    assert body["response"]["allowed"] is False
