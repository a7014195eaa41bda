"""The operator's pod watch (no kopf): list, watch, resume, relist on 410, route."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from shoal.kube import pod_watch
from shoal.kube.api import KubeApi
from shoal.kube.controller import route_pod_event
from shoal.kube.metrics import Metrics
from shoal.kube.naming import LABEL_WORKFLOW_UID
from shoal.kube.runner import WorkflowRunner
from shoal.operator_context import OperatorConfig, OperatorMemo

PATH = "/api/v1/namespaces/team-a/pods"


def pod(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}}


def line(kind: str, obj: dict[str, Any]) -> str:
    return json.dumps({"type": kind, "object": obj})


class FakeApi:
    """Scripted lists and watch streams; once both scripts are used up it blocks and
    says so through `idle`, so a test waits for that instead of sleeping."""

    def __init__(self, lists: list[dict[str, Any]], watches: list[list[str] | Exception]):
        self.lists = lists
        self.watches = watches
        self.list_calls: list[dict[str, Any]] = []
        self.watch_calls: list[dict[str, Any]] = []
        self.idle = asyncio.Event()

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        assert path == PATH
        self.list_calls.append(params)
        return self.lists.pop(0)

    async def lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        assert path == PATH
        self.watch_calls.append(params)
        if not self.watches:
            self.idle.set()
            await asyncio.Event().wait()
        script = self.watches.pop(0)
        if isinstance(script, Exception):
            raise script
        for text in script:
            yield text


async def run_until_idle(api: FakeApi) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    task = asyncio.create_task(
        pod_watch.watch_pods(
            cast(KubeApi, api), PATH, "app=x", lambda k, p: seen.append((k, p["metadata"]["name"]))
        )
    )
    await asyncio.wait_for(api.idle.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return seen


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pod_watch, "RETRY_SECONDS", (0.0,))


async def test_listed_pods_arrive_as_added_then_watch_events_in_order() -> None:
    listing = {"metadata": {"resourceVersion": "10"}, "items": [pod("a", "9")]}
    api = FakeApi([listing], [[line("MODIFIED", pod("a", "11")), line("DELETED", pod("a", "12"))]])
    assert await run_until_idle(api) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert api.list_calls == [{"labelSelector": "app=x"}]
    # The watch starts at the list's version, and resumes from the last one it saw.
    assert [c["resourceVersion"] for c in api.watch_calls] == ["10", "12"]
    assert all(c["labelSelector"] == "app=x" for c in api.watch_calls)


async def test_a_dropped_connection_resumes_from_the_last_version_without_relisting() -> None:
    listing = {"metadata": {"resourceVersion": "10"}, "items": []}
    api = FakeApi(
        [listing],
        [
            [line("ADDED", pod("a", "11"))],
            OSError("connection reset"),
            [line("ADDED", pod("b", "13"))],
        ],
    )
    assert await run_until_idle(api) == [("ADDED", "a"), ("ADDED", "b")]
    assert len(api.list_calls) == 1
    assert [c["resourceVersion"] for c in api.watch_calls] == ["10", "11", "11", "13"]


async def test_an_expired_version_lists_again() -> None:
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    first = {"metadata": {"resourceVersion": "10"}, "items": [pod("a", "9")]}
    second = {"metadata": {"resourceVersion": "50"}, "items": [pod("a", "40"), pod("b", "45")]}
    api = FakeApi([first, second], [[line("ERROR", gone)], []])
    seen = await run_until_idle(api)
    assert seen == [("ADDED", "a"), ("ADDED", "a"), ("ADDED", "b")]
    assert len(api.list_calls) == 2
    assert [c["resourceVersion"] for c in api.watch_calls] == ["10", "50", "50"]


async def test_bookmarks_move_the_version_and_bad_lines_are_skipped() -> None:
    listing = {"metadata": {"resourceVersion": "10"}, "items": []}
    bookmark = {"kind": "Pod", "metadata": {"resourceVersion": "30"}}
    cut = line("ADDED", pod("huge", "20"))[:40] + " [line cut]"
    api = FakeApi(
        [listing], [[cut, "", line("BOOKMARK", bookmark), line("ADDED", pod("b", "31"))], []]
    )
    assert await run_until_idle(api) == [("ADDED", "b")]
    assert [c["resourceVersion"] for c in api.watch_calls] == ["10", "31", "31"]


def test_one_watch_per_namespace_or_one_for_the_cluster() -> None:
    assert pod_watch.pods_paths(["b", "a", "a"]) == [
        "/api/v1/namespaces/a/pods",
        "/api/v1/namespaces/b/pods",
    ]
    assert pod_watch.pods_paths([]) == ["/api/v1/pods"]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        self.events.append((kind, pod))


def test_a_pod_reaches_only_the_runner_its_label_names() -> None:
    shared = OperatorMemo(config=OperatorConfig(), metrics=Metrics())
    runner = Recorder()
    shared.runners["wf-1"] = cast(WorkflowRunner, runner)
    mine = {"metadata": {"name": "p", "labels": {LABEL_WORKFLOW_UID: "wf-1"}}}
    route_pod_event(shared, "MODIFIED", mine)
    route_pod_event(shared, "MODIFIED", {"metadata": {"labels": {LABEL_WORKFLOW_UID: "other"}}})
    route_pod_event(shared, "ADDED", {"metadata": {}})
    assert runner.events == [("MODIFIED", mine)]
    assert runner.events[0][1] is mine  # handed on as decoded: no copy per event


def test_an_event_nested_past_the_c_decoders_limit_still_decodes() -> None:
    deep = '{"type": "ADDED", "object": {"metadata": {"annotations": ' + "[" * 200_000
    deep += "]" * 200_000 + "}}}"
    event = pod_watch.decode(deep)  # no RecursionError: the bounded decoder takes over
    assert event["type"] == "ADDED"
