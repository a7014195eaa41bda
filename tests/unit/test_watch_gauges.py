"""The operator's "what is stuck" gauges (kube/watch_gauges) and their series names."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import generate_latest

from shoal.api.workflow import WorkflowPhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.state import RunState
from shoal.kube.attempts import Attempt
from shoal.kube.metrics import Metrics
from shoal.kube.pods import read_pod
from shoal.kube.watch_gauges import DEADLINE_GRACE_SECONDS, past_deadline, pods_pending
from tests.unit import pod_fixtures
from tests.unit.simulator import workflow


@dataclass
class Run:
    wf: CompiledWorkflow | None
    state: RunState | None
    attempts: dict[tuple[str, int, int], Attempt] = field(default_factory=dict)


def attempt(node: str, index: int, pod: dict[str, object] | None) -> Attempt:
    found = Attempt(node=node, index=index, attempt=1, job=f"job-{node}-{index}", created_at=0.0)
    if pod is not None:
        view = read_pod(pod)
        assert view is not None
        found.pod = view
    return found


def running_state(started_at: float) -> RunState:
    state = RunState.new(["a"])
    state.phase = WorkflowPhase.RUNNING
    state.started_at = started_at
    return state


def test_pending_counts_attempts_whose_pod_has_not_started() -> None:
    wf = workflow({"name": "a"})
    live = Run(wf, running_state(0.0))
    live.attempts = {
        ("a", 0, 1): attempt("a", 0, None),  # Job created, no pod seen yet
        ("a", 1, 1): attempt("a", 1, pod_fixtures.pending_unschedulable()),
        ("a", 2, 1): attempt("a", 2, pod_fixtures.image_pull_backoff()),
        ("a", 3, 1): attempt("a", 3, pod_fixtures.running()),
        ("a", 4, 1): attempt("a", 4, pod_fixtures.completed()),
    }
    reported = attempt("a", 5, None)
    reported.reported = True
    killed = attempt("a", 6, None)
    killed.kill_deadline = 10.0
    live.attempts[reported.key] = reported
    live.attempts[killed.key] = killed
    finished = Run(wf, RunState.new(["a"]), {("a", 0, 1): attempt("a", 0, None)})
    finished.state.phase = WorkflowPhase.FAILED  # type: ignore[union-attr]
    assert pods_pending([live, finished, Run(None, None)]) == 3


def test_past_deadline_counts_unfinished_runs_beyond_deadline_and_grace() -> None:
    timed = workflow({"name": "a"}, activeDeadlineSeconds=100)
    untimed = workflow({"name": "a"})
    now = 1000.0
    late = now - 100 - DEADLINE_GRACE_SECONDS - 1  # started long enough ago
    in_grace = now - 100 - DEADLINE_GRACE_SECONDS + 1
    done = running_state(late)
    done.phase = WorkflowPhase.FAILED
    runs = [
        Run(timed, running_state(late)),
        Run(timed, running_state(in_grace)),
        Run(untimed, running_state(0.0)),
        Run(timed, done),
        Run(None, None),
    ]
    assert past_deadline(runs, now) == 1


def test_both_gauges_are_exported_under_their_documented_names() -> None:
    metrics = Metrics()
    metrics.pods_pending.set_function(lambda: 4)
    metrics.workflows_past_deadline.set_function(lambda: 2)
    text = generate_latest(metrics.registry).decode()
    assert "\nshoal_pods_pending 4.0\n" in text
    assert "\nshoal_workflows_past_deadline 2.0\n" in text
