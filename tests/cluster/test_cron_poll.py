"""The poll trigger on a real control plane, against an HTTP server in the test.

The server listens on loopback (the operator runs as a local process) and logs every
request with its arrival time, so "fires on a change and not otherwise" and "no request
before Retry-After" are asserted from what the server saw, over a bounded number of
polls (intervalSeconds 1). Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import start_operator, wait_until, wait_workflow
from tests.cluster.test_cron import create_cron, get_cron, watch_runs

pytestmark = [pytest.mark.cluster]
IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"


@dataclass(frozen=True)
class Seen:
    arrived: float
    """time.monotonic() when the request arrived (the same clock in every process)."""
    answered: float
    """... and when its answer was sent."""
    status: int
    headers: dict[str, str]


class FeedServer:
    """A loopback HTTP server answering with what the test set; logs every request."""

    def __init__(self) -> None:
        self.body = b"v1"
        self.once: deque[tuple[int, dict[str, str]]] = deque()
        """Answers to give first, one per request (status, headers), with no body."""
        self.log: list[Seen] = []
        self.lock = threading.Lock()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                arrived = time.monotonic()
                with feed.lock:
                    status, headers = feed.once.popleft() if feed.once else (200, {})
                    body = feed.body if status == 200 else b""
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                seen = Seen(arrived, time.monotonic(), status, dict(self.headers.items()))
                with feed.lock:
                    feed.log.append(seen)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads `log`

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/feed"

    def seen(self) -> list[Seen]:
        with self.lock:
            return list(self.log)

    def wait_requests(self, count: int, timeout: float) -> list[Seen]:
        return list(
            wait_until(
                lambda: (log := self.seen()) and len(log) >= count and log,
                timeout,
                f"{count} requests to the feed",
            )
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()


def poll_cron(name: str, url: str, node: dict[str, Any], **poll: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": name},
        "spec": {
            "poll": {"url": url, "intervalSeconds": 1, **poll},
            "workflowSpec": {"image": IMAGE, "nodes": [node]},
        },
    }


# A node that hands the polled body back as its output `said`.
ECHO_BODY = {
    "name": "say",
    "command": [
        "sh",
        "-c",
        'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN '
        '{\\"type\\":\\"output\\",\\"key\\":\\"said\\",\\"value\\":\\"$1\\"}"',
        "say",
        "${{ params.pollBody }}",
    ],
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def list_runs(k8s_api: Any, namespace: str, cron: str) -> list[dict[str, Any]]:
    from tests.cluster.conftest import custom

    items: list[dict[str, Any]] = custom(k8s_api).list_namespaced_custom_object(
        "shoal.dev",
        "v1alpha1",
        namespace,
        "workflows",
        label_selector=f"shoal.dev/cron-workflow={cron}",
    )["items"]
    return items


def create_header_secret(
    k8s_api: Any, namespace: str, headers: dict[str, str], name: str = "feed-auth"
) -> None:
    from kubernetes import client

    data = base64.b64encode(json.dumps(headers).encode()).decode()
    client.CoreV1Api(k8s_api).create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), data={"headers": data}),
    )


@pytest.mark.usefixtures("shoal_operator", "operator_log")
def test_a_change_fires_one_run_and_unchanged_content_fires_none(
    k8s_api: Any, kubectl: Any, namespace: str, feed: FeedServer
) -> None:
    token = "Bearer t0ken-4711"
    create_header_secret(k8s_api, namespace, {"Authorization": token})
    doc = poll_cron(
        "feed", feed.url, ECHO_BODY, headersFrom={"name": "feed-auth", "key": "headers"}
    )
    create_cron(k8s_api, namespace, doc)

    # The first check is the baseline; three more see the same content: nothing fires.
    wait_until(
        lambda: (
            (get_cron(k8s_api, namespace, "feed").get("status") or {}).get("contentHash")
            == sha(b"v1")
        ),
        timeout=30,
        what="the baseline hash in the status",
    )
    before = feed.wait_requests(4, timeout=30)
    assert list_runs(k8s_api, namespace, "feed") == []
    assert {s.headers.get("Authorization") for s in before} == {token}

    with feed.lock:
        feed.body = b"v2"
    runs = watch_runs(k8s_api, namespace, "feed", lambda r: len(r) >= 1, timeout=30)
    (name,) = runs
    params = runs[name]["spec"]["parameters"]
    assert params["pollBody"] == "v2"
    assert params["pollStatus"] == 200
    assert (params["pollHash"], params["pollPreviousHash"]) == (sha(b"v2"), sha(b"v1"))
    done = wait_workflow(k8s_api, namespace, name, timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["nodes"]["say"]["outputs"] == {"said": "v2"}

    # Three more checks of the same content: still one run.
    count = len(feed.seen())
    feed.wait_requests(count + 3, timeout=30)
    assert [r["metadata"]["name"] for r in list_runs(k8s_api, namespace, "feed")] == [name]
    status = get_cron(k8s_api, namespace, "feed")["status"]
    assert status["fireCount"] == 1
    assert status["contentHash"] == sha(b"v2")
    assert "lastError" not in status  # a null in a merge patch deletes the field
    assert status["lastFiredAt"] <= status["lastCheckedAt"]
    # The header's value never reaches the status or an Event.
    everything = (
        json.dumps(status) + kubectl("get", "events", "-o", "json", namespace=namespace).stdout
    )
    assert "t0ken-4711" not in everything


@pytest.mark.usefixtures("shoal_operator", "operator_log")
def test_429_with_retry_after_holds_the_next_request_back(
    k8s_api: Any, namespace: str, feed: FeedServer
) -> None:
    feed.once.append((429, {"Retry-After": "4"}))
    create_cron(k8s_api, namespace, poll_cron("slow", feed.url, ECHO_BODY))
    (refused,) = feed.wait_requests(1, timeout=30)
    assert refused.status == 429
    status = wait_until(
        lambda: (
            (s := get_cron(k8s_api, namespace, "slow").get("status") or {}).get("lastError") and s
        ),
        timeout=30,
        what="the 429 in status.lastError",
    )
    assert status["lastError"].startswith("HTTP 429; Retry-After: next check at ")
    assert status["poll"]["failures"] == 1
    log = feed.wait_requests(3, timeout=30)
    assert log[1].arrived - refused.answered >= 4.0  # nothing before Retry-After elapsed
    assert log[2].arrived - log[1].answered >= 1.0  # then back to intervalSeconds
    assert [s.status for s in log[:3]] == [429, 200, 200]
    wait_until(
        lambda: (get_cron(k8s_api, namespace, "slow").get("status") or {}).get("lastError") is None,
        timeout=30,
        what="lastError cleared by a good check",
    )


def test_own_operator_restart_never_fires_the_same_content_twice(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    feed: FeedServer,
    tmp_path: Path,
) -> None:
    """The status carries the hash and the sequence: a restarted operator neither fires
    the content it fired for, nor re-baselines (a change while it was down fires)."""
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
    try:
        create_cron(
            k8s_api, namespace, poll_cron("steady", feed.url, {"name": "a", "job": "shoal.noop"})
        )
        wait_until(
            lambda: (get_cron(k8s_api, namespace, "steady").get("status") or {}).get("contentHash"),
            timeout=30,
            what="the baseline",
        )
        with feed.lock:
            feed.body = b"v2"
        watch_runs(k8s_api, namespace, "steady", lambda r: len(r) >= 1, timeout=30)
        op.kill()
        with feed.lock:
            feed.body = b"v3"  # changes while the operator is down
        op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
        runs = watch_runs(k8s_api, namespace, "steady", lambda r: len(r) >= 2, timeout=60)
        count = len(feed.seen())
        feed.wait_requests(count + 3, timeout=30)
    finally:
        op.stop()
    runs_now = list_runs(k8s_api, namespace, "steady")
    assert len(runs_now) == 2, [r["metadata"]["name"] for r in runs_now]
    bodies = sorted(r["spec"]["parameters"]["pollBody"] for r in runs_now)
    assert bodies == ["v2", "v3"]
    assert set(runs) == {r["metadata"]["name"] for r in runs_now}


def docs_example(name: str) -> dict[str, Any]:
    from tests.unit.test_cron_docs import examples

    (doc,) = [d for d in examples() if d["metadata"]["name"] == name]
    return doc


@pytest.mark.usefixtures("shoal_operator", "operator_log")
def test_the_docs_poll_example_fires_when_its_condition_holds(
    k8s_api: Any, namespace: str, feed: FeedServer
) -> None:
    """docs/cron.md's release-watch, pointed at the test's server: a change that fails the
    condition fires nothing; the change that passes it fires once."""
    create_header_secret(k8s_api, namespace, {"Authorization": "Bearer docs"}, "releases-token")
    doc = docs_example("release-watch")
    doc["spec"]["poll"].update(url=feed.url, intervalSeconds=1)
    with feed.lock:
        feed.body = b'{"state": "draft", "version": 1}'
    create_cron(k8s_api, namespace, doc)
    feed.wait_requests(2, timeout=30)  # the baseline, then the same content
    with feed.lock:
        feed.body = b'{"state": "draft", "version": 2}'  # a change, but not published
    wait_until(
        lambda: (
            (get_cron(k8s_api, namespace, "release-watch").get("status") or {}).get("contentHash")
            == sha(b'{"state": "draft", "version": 2}')
        ),
        timeout=30,
        what="the draft change seen",
    )
    assert list_runs(k8s_api, namespace, "release-watch") == []
    published = b'{"state": "published", "version": 2}'
    with feed.lock:
        feed.body = published
    runs = watch_runs(k8s_api, namespace, "release-watch", lambda r: len(r) >= 1, timeout=30)
    (run,) = runs.values()
    assert run["spec"]["parameters"]["pollBody"] == published.decode()
    assert feed.seen()[-1].headers.get("Authorization") == "Bearer docs"
