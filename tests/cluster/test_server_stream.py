"""The live Workflow stream on the real control plane: one shared watch, fanned out, each
event sent only to callers whose RBAC lets them watch Workflows in its namespace.

Reuses test_server.py's server and users (A: namespace A; B: read-only namespace B).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import wait_until
from tests.cluster.test_server import Server, _created, running_server, server
from tests.support.plugin import Kubectl

__all__ = ["server"]

pytestmark = [pytest.mark.cluster]
STREAM = "/api/v1/stream/workflows"


class Events:
    """One open SSE stream, read a frame at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()
        self.seen: list[tuple[str, Any]] = []

    def until(self, wanted: Any) -> list[tuple[str, Any]]:
        """Frames up to the first `wanted(kind, data)`; fails if the stream ends first."""
        kind = ""
        for line in self.lines:
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                self.seen.append((kind, data))
                if wanted(kind, data):
                    return self.seen
                assert kind != "end", f"the stream ended first: {self.seen}"
        raise AssertionError(f"the stream closed first: {self.seen}")


def names(frames: list[tuple[str, Any]]) -> set[str]:
    return {data["object"]["metadata"]["name"] for kind, data in frames if kind == "workflow"}


def named(name: str) -> Any:
    return lambda kind, data: kind == "workflow" and data["object"]["metadata"]["name"] == name


@contextlib.contextmanager
def opened(server: Server, user: str, query: str = "") -> Iterator[Events]:
    headers = {"Authorization": f"Bearer {server.tokens[user]}"}
    url = f"{server.url}{STREAM}?seconds=60{query}"
    with httpx.stream("GET", url, headers=headers, timeout=90) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Events(response)


def test_each_caller_gets_only_what_rbac_lets_them_watch(server: Server, k8s_api: Any) -> None:
    a, b = server.namespaces["a"], server.namespaces["b"]
    _created(k8s_api, a, "before-a")  # in the snapshot
    with opened(server, "a") as stream_a, opened(server, "b") as stream_b:
        first = stream_a.until(lambda kind, _: kind == "synced")
        assert "before-a" in names(first)
        stream_b.until(lambda kind, _: kind == "synced")
        _created(k8s_api, b, "live-b")
        _created(k8s_api, a, "live-a")
        _created(k8s_api, b, "later-b")
        # One watch delivers in order: had B's event leaked to A, A would see it first.
        seen_a = stream_a.until(named("live-a"))
        assert names(seen_a) >= {"before-a", "live-a"}
        assert not names(seen_a) & {"live-b", "later-b"}
        seen_b = stream_b.until(named("later-b"))
        assert "live-b" in names(seen_b)
        assert not names(seen_b) & {"before-a", "live-a"}
        for frame in seen_a + seen_b:
            if frame[0] == "workflow":
                assert frame[1]["type"] in {"ADDED", "MODIFIED", "DELETED"}
                assert set(frame[1]["object"]) >= {"metadata", "phase"}


def test_a_namespace_the_caller_may_not_watch_is_refused_before_the_stream(
    server: Server,
) -> None:
    a = server.namespaces["a"]
    refused = server.call("GET", f"{STREAM}?namespace={a}", "b")
    assert refused.status_code == 403
    assert "watch" in refused.json()["message"]
    assert server.call("GET", STREAM, None).status_code == 401
    forged = server.call("GET", STREAM, None, headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401
    assert server.call("GET", f"{STREAM}?seconds=99999", "a").status_code == 400


def workflow_watches(kubectl: Kubectl) -> int:
    """Watches of Workflows the API server is serving now (its own metric)."""
    metrics = kubectl("get", "--raw", "/metrics").stdout
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("apiserver_longrunning_requests{") and (
            'resource="workflows"' in line and 'verb="WATCH"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _open_many(server: Server, kubectl: Kubectl, count: int) -> int:
    """The Workflow watch count while `count` more clients have their snapshot."""
    with contextlib.ExitStack() as stack:
        streams = [stack.enter_context(opened(server, "a")) for _ in range(count)]
        for stream in streams:
            stream.until(lambda kind, _: kind == "synced")
        return workflow_watches(kubectl)


def test_fifty_clients_share_one_watch(server: Server, kubectl: Kubectl, kubeconfig: Path) -> None:
    """A fresh server, so that its shared watch is opened by this test's first client.

    The controllers (garbage collector, quota) start watching a new resource on their own
    schedule, so a measurement counts only when the count was the same just before the
    49 clients came and just after they left; one where it moved is made again.
    """
    a = server.namespaces["a"]
    before = workflow_watches(kubectl)
    with running_server(kubeconfig) as (url, _log):
        fresh = Server(url, server.log, server.tokens, server.namespaces)
        with opened(fresh, "a", f"&namespace={a}") as one:
            one.until(lambda kind, _: kind == "synced")
            wait_until(lambda: workflow_watches(kubectl) > before, 30, "the server's watch")
            for _ in range(3):
                with_one = workflow_watches(kubectl)
                with_fifty = _open_many(fresh, kubectl, 49)
                if workflow_watches(kubectl) == with_one:  # nobody else started one meanwhile
                    break
            assert with_fifty == with_one
    assert with_one >= 1


def test_one_workflow_streams_whole_until_deleted(server: Server, k8s_api: Any) -> None:
    from tests.cluster.conftest import GROUP, PLURAL, VERSION, custom

    a, b = server.namespaces["a"], server.namespaces["b"]
    _created(k8s_api, a, "watched")
    _created(k8s_api, a, "bystander")
    path = f"{STREAM}/{a}/watched"
    assert server.call("GET", path, "b").status_code == 403  # RBAC's answer, before streaming
    assert server.call("GET", f"{STREAM}/{b}/nothing", "b").status_code == 404
    headers = {"Authorization": f"Bearer {server.tokens['a']}"}
    with httpx.stream("GET", f"{server.url}{path}?seconds=60", headers=headers, timeout=90) as r:
        assert r.status_code == 200
        events = Events(r)
        first = events.until(lambda kind, _: kind == "workflow")
        assert first[-1][1]["metadata"]["name"] == "watched"
        assert first[-1][1]["status"]["phase"] == "Pending"
        status = {
            "phase": "Running",
            "progress": "0/1",
            "nodes": {"hello": {"phase": "Running", "progress": 50.0, "message": "half"}},
        }
        api = custom(k8s_api)
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, a, PLURAL, "bystander", {"status": {"phase": "Running"}}
        )
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, a, PLURAL, "watched", {"status": status}
        )

        def running(kind: str, data: Any) -> bool:
            return kind == "workflow" and data["status"]["phase"] == "Running"

        seen = events.until(running)
        node = seen[-1][1]["status"]["nodes"]["hello"]
        assert (node["progress"], node["message"]) == (50.0, "half")
        assert all(d["metadata"]["name"] == "watched" for k, d in seen if k == "workflow")
        api.delete_namespaced_custom_object(GROUP, VERSION, a, PLURAL, "watched")
        ended = events.until(lambda kind, _: kind == "end")
        assert ("deleted", {}) in ended
        assert ended[-1] == ("end", {"reason": "deleted"})
