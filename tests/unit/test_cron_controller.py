"""The CronWorkflow controller's reconcile pass against a fake API (no cluster)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prometheus_client import CollectorRegistry

from shoal.cron.controller import ANNOTATION_SCHEDULED, LABEL_CRON, CronMetrics, reconcile, rfc3339
from shoal.kube.api import KubeApi

T0 = datetime(2026, 1, 1, tzinfo=UTC)
UID = "u-1"


class FakeApi:
    """Workflows and one CronWorkflow's status in dicts; records every write."""

    def __init__(self, runs: dict[str, dict[str, Any]] | None = None) -> None:
        self.runs = runs or {}
        self.status: dict[str, Any] = {}
        self.writes: list[tuple[str, str]] = []

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        assert params["labelSelector"] == f"{LABEL_CRON}=c"
        return {"items": list(self.runs.values())}

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        name = body["metadata"]["name"]
        self.writes.append(("create", name))
        if name in self.runs:
            return None
        self.runs[name] = body
        return body

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/status"):
            self.writes.append(("status", ""))
            self.status.update(body["status"])
        else:
            self.writes.append(("stop", path.rsplit("/", 1)[1]))
        return {}

    async def delete(self, path: str, *, propagation: str = "Background") -> bool:
        self.writes.append(("delete", path.rsplit("/", 1)[1]))
        return self.runs.pop(path.rsplit("/", 1)[1], None) is not None


def cron(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "uid": UID,
            "creationTimestamp": rfc3339(T0),
        },
        "spec": {
            "schedule": "0 * * * *",
            "parameters": {"p": 1},
            "workflowSpec": {"parameters": {"p": 0, "q": 2}, "nodes": [{"name": "a", "job": "j"}]},
            **spec,
        },
    }


def run(name: str, at: datetime, phase: str | None, uid: str = UID) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "annotations": {ANNOTATION_SCHEDULED: rfc3339(at)},
            "ownerReferences": [{"kind": "CronWorkflow", "uid": uid}],
        },
        "status": {"phase": phase} if phase else {},
    }


def go(api: FakeApi, raw: dict[str, Any], now: datetime) -> datetime | None:
    metrics = CronMetrics(CollectorRegistry())
    return asyncio.run(reconcile(cast(KubeApi, api), raw, now, metrics))


def test_fires_a_run_with_parameters_labels_and_owner() -> None:
    api = FakeApi()
    wake = go(api, cron(), T0 + timedelta(hours=1, seconds=0.1))
    name = "c-1767229200"
    body = api.runs[name]
    assert body["spec"]["parameters"] == {"p": 1, "q": 2, "scheduledTime": "2026-01-01T01:00:00Z"}
    assert body["metadata"]["labels"][LABEL_CRON] == "c"
    assert body["metadata"]["ownerReferences"][0]["uid"] == UID
    assert api.status["fireCount"] == 1
    assert api.status["active"] == [name]
    assert api.status["lastScheduleTime"] == "2026-01-01T01:00:00Z"
    assert api.status["nextScheduleTime"] == "2026-01-01T02:00:00Z"
    assert wake == T0 + timedelta(hours=2)


def test_already_exists_is_already_fired() -> None:
    # Another operator created it first; the status does not know yet.
    at = T0 + timedelta(hours=1)
    api = FakeApi()
    raw = cron()
    go(api, raw, at)
    api.status = {}
    api.writes.clear()
    api.runs["c-1767229200"] = run("c-1767229200", at, None)
    go(api, raw, at + timedelta(seconds=1))
    assert [w for w in api.writes if w[0] == "create"] == []
    assert api.status["lastScheduleTime"] == rfc3339(at)


def test_a_409_does_not_count_as_fired() -> None:
    at = T0 + timedelta(hours=1)
    api = FakeApi()

    async def get(path: str, **params: Any) -> dict[str, Any]:
        return {"items": []}  # a stale list: the run exists but is not listed yet

    api.get = get  # type: ignore[method-assign]
    api.runs["c-1767229200"] = run("c-1767229200", at, None)
    go(api, cron(), at)
    assert ("create", "c-1767229200") in api.writes
    assert api.status["fireCount"] == 0


def test_replace_stops_then_creates_and_history_deletes_after_the_status() -> None:
    t1, t2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    runs = {
        "c-old": run("c-old", T0 - timedelta(hours=1), "Succeeded"),
        "c-1767229200": run("c-1767229200", t1, "Running"),
        "other": run("other", t1, "Succeeded", uid="someone-else"),
    }
    api = FakeApi(runs)
    raw = cron(concurrencyPolicy="Replace", successfulRunsHistoryLimit=0)
    raw["status"] = {"lastScheduleTime": rfc3339(t1)}
    go(api, raw, t2)
    kinds = [w[0] for w in api.writes]
    assert kinds == ["stop", "create", "status", "delete"]
    assert api.writes[0] == ("stop", "c-1767229200")
    assert api.writes[3] == ("delete", "c-old")
    assert "other" in api.runs


def test_an_unchanged_status_is_not_patched() -> None:
    api = FakeApi()
    raw = cron()
    go(api, raw, T0 + timedelta(minutes=1))
    raw["status"] = dict(api.status)
    api.writes.clear()
    go(api, raw, T0 + timedelta(minutes=2))
    assert api.writes == []


def test_an_invalid_spec_is_reported_in_last_error() -> None:
    api = FakeApi()
    raw = cron(timezone="Mars/Olympus")
    assert go(api, raw, T0) is None
    assert "Mars/Olympus" in api.status["lastError"]


def test_metrics_count_fired_skipped_replaced_and_missed() -> None:
    registry = CollectorRegistry()
    metrics = CronMetrics(registry)
    t1 = T0 + timedelta(hours=1)
    api = FakeApi({"c-1767229200": run("c-1767229200", t1, "Running")})

    def count(name: str) -> float:
        return registry.get_sample_value(f"shoal_cron_runs_{name}_total") or 0.0

    raw = cron(concurrencyPolicy="Forbid")
    asyncio.run(reconcile(cast(KubeApi, api), raw, T0 + timedelta(hours=2), metrics))
    assert (count("fired"), count("skipped")) == (0, 1)
    raw = cron(concurrencyPolicy="Replace", startingDeadlineSeconds=60)
    raw["status"] = dict(api.status)
    asyncio.run(reconcile(cast(KubeApi, api), raw, T0 + timedelta(hours=4, minutes=2), metrics))
    assert (count("fired"), count("replaced"), count("missed")) == (0, 0, 2)
    asyncio.run(reconcile(cast(KubeApi, api), raw, T0 + timedelta(hours=5), metrics))
    assert (count("fired"), count("replaced")) == (1, 1)


def test_a_trigger_not_implemented_yet_says_so() -> None:
    api = FakeApi()
    raw = cron(schedule=None, poll={"url": "https://example.com/feed"})
    assert go(api, raw, T0) is None
    assert "not implemented yet" in api.status["lastError"]
    assert api.runs == {}
