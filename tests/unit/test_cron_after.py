"""Chained-trigger decisions: exactly once per upstream run, across restarts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shoal.api.cron import AfterTrigger, CronWorkflow
from shoal.api.limits import MAX_FORWARDED_OUTPUTS_BYTES as MAX_OUTPUTS_BYTES
from shoal.cron.after import (
    GRACE,
    AfterDecision,
    AfterState,
    Upstream,
    decide,
    run_name,
)

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def up(uid: str, phase: str | None = "Succeeded", at: float = 10, **outputs: Any) -> Upstream:
    return Upstream(uid, f"run-{uid}", phase, CREATED + timedelta(seconds=at), outputs)


def go(
    runs: Sequence[Upstream],
    state: AfterState | None = None,
    already: Collection[str] = (),
    suspended: bool = False,
    **trigger: Any,
) -> AfterDecision:
    after = AfterTrigger.model_validate({"cronWorkflow": "upstream", **trigger})
    return decide(
        "down",
        after,
        suspended=suspended,
        created=CREATED,
        state=state or AfterState(),
        upstream=runs,
        already=already,
    )


def fired(decision: AfterDecision) -> list[str]:
    return [f.upstream.uid for f in decision.fire]


def test_a_success_fires_once_with_name_phase_and_outputs() -> None:
    d = go([up("u1", extract={"rows": 3})])
    assert fired(d) == ["u1"]
    fire = d.fire[0]
    assert fire.run == run_name("down", "u1")
    assert fire.parameters == {
        "upstreamName": "run-u1",
        "upstreamPhase": "Succeeded",
        "upstreamOutputs": {"extract": {"rows": 3}},
    }
    assert fired(go([up("u1")], d.state)) == []  # the next pass remembers it


def test_a_failure_does_not_fire_unless_its_phase_is_listed() -> None:
    assert fired(go([up("u1", "Failed")])) == []
    assert fired(go([up("u1", "Failed"), up("u2")], phases=["Failed"])) == ["u1"]


def test_running_upstream_runs_wait_until_they_finish() -> None:
    first = go([Upstream("u1", "run-u1", "Running", None)])
    assert fired(first) == []
    assert fired(go([up("u1", at=30)], first.state)) == ["u1"]


def test_runs_finished_before_the_cron_existed_never_fire() -> None:
    assert fired(go([up("old", at=-1), up("new", at=1)])) == ["new"]


def test_an_existing_run_for_an_upstream_uid_is_already_fired() -> None:
    """A restart that lost the status patch: the downstream run's annotation says so."""
    assert fired(go([up("u1"), up("u2")], already={"u1"})) == ["u2"]


def test_after_a_restart_runs_finished_while_down_fire_and_old_ones_do_not() -> None:
    cursor = CREATED + timedelta(hours=1)
    state = AfterState(cursor=cursor, fired=("recent",))
    runs = [
        up("pruned", at=60),  # fired long ago; its downstream run was deleted by history
        up("recent", at=3600 - 5),
        up("late", at=3600 - 10),  # finished just before the cursor, reported late
        up("while-down", at=3600 + 120),
    ]
    d = go(runs, state)
    assert fired(d) == ["late", "while-down"]
    assert d.state.cursor == CREATED + timedelta(seconds=3600 + 120)
    assert set(d.state.fired) == {"recent", "late", "while-down"}


def test_the_remembered_uids_are_pruned_to_the_grace_window() -> None:
    d = go([up("a", at=0), up("b", at=GRACE.total_seconds() + 60)])
    assert fired(d) == ["a", "b"]
    assert d.state.fired == ("b",)  # a is older than cursor - GRACE: the cursor covers it
    assert fired(go([up("a", at=0), up("b", at=GRACE.total_seconds() + 60)], d.state)) == []


def test_suspended_passes_over_upstream_runs_for_good() -> None:
    d = go([up("u1")], suspended=True)
    assert fired(d) == []
    assert d.suspended == 1
    assert fired(go([up("u1")], d.state)) == []


def test_outputs_too_large_fire_nothing_and_say_so_once() -> None:
    big = up("u1", n={"blob": "x" * (MAX_OUTPUTS_BYTES + 1)})
    d = go([big])
    assert fired(d) == []
    assert d.state.error is not None
    assert "run-u1" in d.state.error
    again = go([big], d.state)
    assert fired(again) == []
    assert again.state.error == d.state.error  # shown until a later run fires
    assert go([big, up("u2", at=20)], again.state).state.error is None


def test_several_upstream_runs_fire_oldest_first() -> None:
    assert fired(go([up("b", at=20), up("a", at=10), up("c", at=30)])) == ["a", "b", "c"]


def test_run_names_come_from_the_uid_and_fit() -> None:
    assert run_name("down", "u1") == run_name("down", "u1")
    assert run_name("down", "u1") != run_name("down", "u2")
    assert len(run_name("d" * 253, "u1")) <= 253


def test_the_trigger_names_exactly_one_upstream_with_finished_phases() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        AfterTrigger.model_validate({})
    with pytest.raises(ValidationError):
        AfterTrigger.model_validate({"workflow": "w", "phases": ["Running"]})
    with pytest.raises(ValidationError):
        AfterTrigger.model_validate({"workflow": "w", "phases": []})


def test_a_cron_workflow_cannot_follow_itself() -> None:
    doc = {
        "metadata": {"name": "loop"},
        "spec": {
            "after": {"cronWorkflow": "loop"},
            "workflowSpec": {"nodes": [{"name": "a", "job": "j"}]},
        },
    }
    with pytest.raises(ValidationError, match="cannot fire after its own runs"):
        CronWorkflow.model_validate(doc)
