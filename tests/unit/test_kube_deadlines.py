"""A runner's deadlines: it wakes for a pod that never starts and a kill that never lands,
and never for a pod that runs or an attempt already reported."""

from __future__ import annotations

from shoal.kube.attempts import Attempt
from shoal.kube.deadlines import deadline_of, next_deadline
from shoal.kube.pods import read_pod
from tests.unit.pod_fixtures import completed, pending_unschedulable, running

LIMIT = 300.0


def attempt(created_at: float = 1000.0) -> Attempt:
    return Attempt("a", 0, 1, "job-a", created_at)


def test_a_pod_not_started_is_due_when_its_time_to_start_ends() -> None:
    waiting = attempt()
    assert deadline_of(waiting, LIMIT) == 1300.0  # no pod seen yet
    waiting.pod = read_pod(pending_unschedulable())
    assert deadline_of(waiting, LIMIT) == 1300.0


def test_a_running_or_finished_pod_has_no_deadline() -> None:
    for pod in (running(), completed()):
        started = attempt()
        started.pod = read_pod(pod)
        assert started.pod is not None
        assert deadline_of(started, LIMIT) is None


def test_a_kill_is_due_at_the_end_of_its_grace_even_while_the_pod_runs() -> None:
    killed = attempt()
    killed.pod = read_pod(running())
    killed.kill_deadline = 1060.0
    assert deadline_of(killed, LIMIT) == 1060.0


def test_reported_and_completing_attempts_are_not_waited_for() -> None:
    done, completing = attempt(), attempt()
    done.reported, completing.completing = True, True
    assert deadline_of(done, LIMIT) is None
    assert deadline_of(completing, LIMIT) is None


def test_the_next_deadline_is_the_earliest_of_the_planner_and_the_attempts() -> None:
    late, early = attempt(2000.0), attempt(1000.0)
    assert next_deadline([late, early], None, LIMIT) == 1300.0
    assert next_deadline([late, early], 1100.0, LIMIT) == 1100.0
    assert next_deadline([], None, LIMIT) is None
