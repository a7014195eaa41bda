"""The CronWorkflow controller's reconcile pass against a fake API (no cluster)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prometheus_client import CollectorRegistry

from shoal.archive.service import Archive
from shoal.cron.after import run_name as after_run_name
from shoal.cron.fires import Fire
from shoal.cron.passes import Checked, CronMetrics, PassResult, reconcile
from shoal.cron.poll import Failure, Response, url_key
from shoal.cron.runs import (
    ANNOTATION_SCHEDULED,
    ANNOTATION_TRIGGER,
    ANNOTATION_UPSTREAM,
    LABEL_CRON,
    manual_time,
    rfc3339,
)
from shoal.cron.runtime import CronRuntime, CronState
from shoal.kube.api import ApiError, KubeApi
from shoal.kube.metrics import Metrics
from shoal.operator_context import OperatorConfig, OperatorMemo

T0 = datetime(2026, 1, 1, tzinfo=UTC)
UID = "u-1"


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386): null deletes, objects merge, the rest replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = {} if isinstance(value, dict) else value
            if isinstance(value, dict):
                merge(target[key], value)


class FakeApi:
    """Workflows and one CronWorkflow's status in dicts; records every write."""

    def __init__(self, runs: dict[str, dict[str, Any]] | None = None) -> None:
        self.runs = runs or {}
        self.status: dict[str, Any] = {}
        self.writes: list[tuple[str, str]] = []
        self.reads: list[str] = []

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        self.reads.append(path)
        if "labelSelector" in params:
            key, value = params["labelSelector"].split("=")
            items = self.runs.values()
            return {"items": [r for r in items if r["metadata"]["labels"].get(key) == value]}
        name = path.rsplit("/", 1)[1]
        if name not in self.runs:
            raise ApiError(404, "NotFound", f"{name} not found")
        return self.runs[name]

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        name = body["metadata"]["name"]
        self.writes.append(("create", name))
        body = {**body, "metadata": {**body["metadata"], "creationTimestamp": rfc3339(T0)}}
        if name in self.runs:
            return None
        self.runs[name] = body
        return body

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/status"):
            self.writes.append(("status", ""))
            merge(self.status, body["status"])
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
            "labels": {LABEL_CRON: "c"},
            "annotations": {ANNOTATION_SCHEDULED: rfc3339(at)},
            "ownerReferences": [{"kind": "CronWorkflow", "uid": uid}],
        },
        "status": {"phase": phase} if phase else {},
    }


def go(api: FakeApi, raw: dict[str, Any], now: datetime) -> datetime | None:
    metrics = CronMetrics(CollectorRegistry())
    return asyncio.run(reconcile(cast(KubeApi, api), raw, now, metrics)).wake


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


# -- poll and after through reconcile ----------------------------------------------------


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def poll_cron(**poll: Any) -> dict[str, Any]:
    return cron(schedule=None, poll={"url": "https://feed.example/x", **poll})


def check(
    api: FakeApi,
    raw: dict[str, Any],
    outcome: Any,
    at: datetime,
    fires: list[Fire] | None = None,
    metrics: CronMetrics | None = None,
) -> PassResult:
    metrics = metrics or CronMetrics(CollectorRegistry())
    on_fire = fires.append if fires is not None else None
    result = reconcile(
        cast(KubeApi, api), raw, at, metrics, checked=Checked(outcome, at), on_fire=on_fire
    )
    return asyncio.run(result)


def test_a_poll_only_cron_asks_for_its_first_check_at_once() -> None:
    api = FakeApi()
    result = asyncio.run(
        reconcile(cast(KubeApi, api), poll_cron(), T0, CronMetrics(CollectorRegistry()))
    )
    assert result == PassResult(wake=None, poll_due=T0)
    assert "lastError" not in api.status
    assert api.runs == {}


def test_a_change_fires_a_poll_run_and_the_status_records_it() -> None:
    api = FakeApi()
    raw = poll_cron(intervalSeconds=30)
    raw["status"] = {"contentHash": sha("v1"), "poll": {"fires": 2}}
    at = T0 + timedelta(seconds=0.25)
    fires: list[Fire] = []
    registry = CollectorRegistry()
    result = check(api, raw, Response(200, {}, b"v2", 2), at, fires, CronMetrics(registry))
    name = f"c-p2-{sha('v2')[:10]}"
    body = api.runs[name]
    assert body["metadata"]["annotations"] == {ANNOTATION_TRIGGER: "poll"}  # no schedule cursor
    params = body["spec"]["parameters"]
    assert params["pollBody"] == "v2"
    assert (params["pollHash"], params["pollPreviousHash"]) == (sha("v2"), sha("v1"))
    assert params["pollStatus"] == 200
    assert params["scheduledTime"] == "2026-01-01T00:00:00Z"
    assert api.status["fireCount"] == 1
    assert api.status["contentHash"] == sha("v2")
    assert api.status["lastCheckedAt"] == "2026-01-01T00:00:00.250000Z"
    assert api.status["lastFiredAt"] == "2026-01-01T00:00:00.250000Z"
    assert api.status["poll"] == {
        "nextCheckTime": "2026-01-01T00:00:30.250000Z",
        "fires": 3,
        "failures": 0,
        "url": url_key("https://feed.example/x"),
    }
    assert result.poll_due == at + timedelta(seconds=30)
    assert fires == [Fire("ns", "c", at, name)]
    assert registry.get_sample_value("shoal_cron_poll_checks_total") == 1
    assert registry.get_sample_value("shoal_cron_poll_changes_total") == 1
    assert registry.get_sample_value("shoal_cron_runs_fired_total") == 1


def test_a_poll_run_that_exists_is_not_counted_but_the_sequence_moves_on() -> None:
    api = FakeApi()
    raw = poll_cron()
    raw["status"] = {"contentHash": sha("v1")}
    name = f"c-p0-{sha('v2')[:10]}"
    api.runs[name] = {"metadata": {"name": name, "labels": {}}}
    check(api, raw, Response(200, {}, b"v2", 2), T0)
    assert ("create", name) in api.writes
    assert api.status["fireCount"] == 0
    assert api.status["poll"]["fires"] == 1
    assert "lastFiredAt" not in api.status


def test_a_failed_check_backs_off_and_shows_in_last_error() -> None:
    api = FakeApi()
    raw = poll_cron(intervalSeconds=10)
    registry = CollectorRegistry()
    raw["status"] = {"poll": {"failures": 1}}
    result = check(api, raw, Failure("ConnectError: refused"), T0, metrics=CronMetrics(registry))
    assert api.status["lastError"] == "ConnectError: refused"
    assert api.status["poll"]["failures"] == 2
    assert result.poll_due == T0 + timedelta(seconds=20)
    assert registry.get_sample_value("shoal_cron_poll_errors_total") == 1
    raw["status"] = dict(api.status)
    check(api, raw, Response(200, {}, b"ok", 2), T0 + timedelta(seconds=20))
    assert "lastError" not in api.status


def test_a_suspended_poll_asks_for_no_check() -> None:
    raw = poll_cron()
    raw["spec"]["suspend"] = True
    metrics = CronMetrics(CollectorRegistry())
    result = asyncio.run(reconcile(cast(KubeApi, FakeApi()), raw, T0, metrics))
    assert result.poll_due is None


def test_an_invalid_condition_is_reported_naming_the_field() -> None:
    api = FakeApi()
    result = asyncio.run(
        reconcile(
            cast(KubeApi, api),
            poll_cron(condition="status == 200"),
            T0,
            CronMetrics(CollectorRegistry()),
        )
    )
    assert result == PassResult(None, None)
    assert api.status["lastError"].startswith("spec.poll.condition: bad expression: ")
    assert "unknown name 'status'" in api.status["lastError"]


def upstream(name: str, uid: str, phase: str, at: datetime) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": uid,
            "labels": {LABEL_CRON: "up"},
            "ownerReferences": [{"kind": "CronWorkflow", "name": "up", "uid": "u-up"}],
        },
        "status": {
            "phase": phase,
            "finishedAt": rfc3339(at),
            "nodes": {"a": {"phase": phase, "outputs": {"n": 1}}, "b": {"phase": phase}},
        },
    }


def test_after_fires_once_per_upstream_run_even_when_the_status_is_lost() -> None:
    at = T0 + timedelta(minutes=1)
    api = FakeApi(
        {
            "up-1": upstream("up-1", "uid-1", "Succeeded", at),
            "up-2": upstream("up-2", "uid-2", "Failed", at),
        }
    )
    raw = cron(schedule=None, after={"cronWorkflow": "up"})
    fires: list[Fire] = []
    metrics = CronMetrics(CollectorRegistry())
    asyncio.run(reconcile(cast(KubeApi, api), raw, at, metrics, on_fire=fires.append))
    created = [name for kind, name in api.writes if kind == "create"]
    assert created == [after_run_name("c", "uid-1")]
    body = api.runs[created[0]]
    assert body["metadata"]["annotations"] == {
        ANNOTATION_TRIGGER: "after",
        ANNOTATION_UPSTREAM: "uid-1",
    }
    params = body["spec"]["parameters"]
    assert params["upstreamName"] == "up-1"
    assert params["upstreamPhase"] == "Succeeded"
    assert params["upstreamOutputs"] == {"a": {"n": 1}}
    assert fires == [Fire("ns", "c", at, created[0])]
    assert api.status["after"]["fired"] == ["uid-1"]
    assert api.status["fireCount"] == 1
    for status in (dict(api.status), {}):  # the next pass, and one whose status was lost
        api.writes.clear()
        raw["status"] = status
        asyncio.run(reconcile(cast(KubeApi, api), raw, at, metrics))
        assert [w for w in api.writes if w[0] == "create"] == []


def test_an_unchanged_after_status_is_not_patched_again() -> None:
    at = T0 + timedelta(minutes=1)
    api = FakeApi({"up-1": upstream("up-1", "uid-1", "Succeeded", at)})
    raw = cron(schedule=None, after={"cronWorkflow": "up"})
    metrics = CronMetrics(CollectorRegistry())
    asyncio.run(reconcile(cast(KubeApi, api), raw, at, metrics))
    raw["status"] = copy.deepcopy(api.status)
    assert api.status["active"] == [after_run_name("c", "uid-1")]
    api.writes.clear()
    asyncio.run(reconcile(cast(KubeApi, api), raw, at + timedelta(seconds=5), metrics))
    assert api.writes == []


def test_after_a_named_workflow_that_does_not_exist_yet_waits() -> None:
    api = FakeApi()
    raw = cron(schedule=None, after={"workflow": "nightly-etl"})
    asyncio.run(reconcile(cast(KubeApi, api), raw, T0, CronMetrics(CollectorRegistry())))
    assert api.runs == {}
    assert "lastError" not in api.status


def test_history_limits_cover_poll_and_after_runs_but_not_manual_ones() -> None:
    def owned(name: str, trigger: str, phase: str) -> dict[str, Any]:
        body = run(name, T0, phase)
        body["metadata"]["annotations"] = {ANNOTATION_TRIGGER: trigger}
        body["metadata"]["creationTimestamp"] = rfc3339(T0)
        return body

    api = FakeApi(
        {
            "c-p0-x": owned("c-p0-x", "poll", "Succeeded"),
            "c-ay": owned("c-ay", "after", "Failed"),
            "c-manual-z": owned("c-manual-z", "manual", "Succeeded"),
        }
    )
    raw = poll_cron()
    raw["spec"].update(successfulRunsHistoryLimit=0, failedRunsHistoryLimit=0)
    asyncio.run(reconcile(cast(KubeApi, api), raw, T0, CronMetrics(CollectorRegistry())))
    assert sorted(api.runs) == ["c-manual-z"]


# -- the operator-wide runtime: routing upstream events, manual fires ---------------------


def runtime() -> CronRuntime:
    return CronRuntime(OperatorMemo(config=OperatorConfig(), metrics=Metrics()))


def finished_run(namespace: str, name: str, owner: str | None = None) -> dict[str, Any]:
    owners = [{"kind": "CronWorkflow", "name": owner}] if owner else []
    meta = {"namespace": namespace, "name": name, "ownerReferences": owners}
    return {"metadata": meta, "status": {"phase": "Succeeded"}}


def test_an_upstream_run_wakes_exactly_its_followers() -> None:
    rt = runtime()
    down, other = CronState(), CronState()
    rt.states = {("ns", "down"): down, ("ns", "other"): other}
    rt.follow(("ns", "down"), down, {"spec": {"after": {"cronWorkflow": "up"}}})
    rt.upstream_finished(finished_run("elsewhere", "up-1", owner="up"))
    rt.upstream_finished(finished_run("ns", "unrelated", owner="another"))
    assert not down.wake.is_set()
    rt.upstream_finished(finished_run("ns", "up-1", owner="up"))
    assert down.wake.is_set()
    assert not other.wake.is_set()

    down.wake.clear()  # the spec now follows a named Workflow instead
    rt.follow(("ns", "down"), down, {"spec": {"after": {"workflow": "migrate"}}})
    rt.upstream_finished(finished_run("ns", "up-2", owner="up"))
    assert not down.wake.is_set()
    rt.upstream_finished(finished_run("ns", "migrate"))
    assert down.wake.is_set()
    rt.unfollow(("ns", "down"), down)
    assert rt.followers == {}


def test_a_manual_run_is_recorded_once_at_its_creation_second() -> None:
    rt = runtime()
    recorded: list[Fire] = []
    rt.record_fire = recorded.append  # type: ignore[method-assign,assignment]
    rt.memo.archive = cast(Archive, object())  # configured (record_fire is replaced)
    created = "2026-01-01T00:00:07Z"
    obj = {
        "metadata": {
            "namespace": "ns",
            "name": "c-manual-abc",
            "uid": "u-9",
            "creationTimestamp": created,
            "ownerReferences": [{"kind": "CronWorkflow", "name": "c"}],
        }
    }
    rt.manual_run_seen(obj)
    rt.manual_run_seen(obj)  # the same run seen again (a re-list)
    assert recorded == [
        Fire("ns", "c", manual_time("u-9", T0 + timedelta(seconds=7)), "c-manual-abc")
    ]


def test_an_edited_schedule_fires_nothing_from_before_the_edit() -> None:
    api = FakeApi()
    go(api, cron(), T0 + timedelta(hours=1, seconds=0.1))  # hourly: fires 01:00
    assert sorted(api.runs) == ["c-1767229200"]
    assert api.status["scheduleDescription"] == "Every hour"
    # Edited at 04:30 to every 30 minutes with catch-up `all`: 01:30 .. 04:30 passed while
    # the hourly schedule was in force, so none of them fires.
    edited = cron(schedule="*/30 * * * *", catchUp={"policy": "all", "maxRuns": 10})
    edited["status"] = dict(api.status)
    edit = T0 + timedelta(hours=4, minutes=30, seconds=1)
    go(api, edited, edit)
    assert sorted(api.runs) == ["c-1767229200"]
    assert api.status["scheduleSince"] == rfc3339(edit)
    edited["status"] = dict(api.status)
    go(api, edited, T0 + timedelta(hours=5, seconds=0.1))
    assert sorted(api.runs) == ["c-1767229200", "c-1767243600"]
