"""A deterministic, simulated executor for planner tests (a test helper, not product code).

It plays the part the local and Kubernetes executors play: it calls `advance`, "starts" a
task for every `StartTask`, finishes tasks in an order the test chooses with outcomes the
test chooses, honours `KillTask` by finishing that attempt as failed, and moves a fake
clock forward to the planner's `wake_at` when no running task can finish by itself.

Everything observable is recorded (`log`, `starts`, `events`) so tests can assert on the
exact decisions, and `check` hooks let property tests inspect the state after every step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shoal.api.workflow import WorkflowSpec
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta
from shoal.core.decisions import Decision, KillTask, Plan, StartTask
from shoal.core.planner import advance
from shoal.core.state import PlanIndex, RunState, TaskFinished, record_finished
from shoal.core.validation import compile_workflow

D = TypeVar("D")

Key = tuple[str, int]
"""(node, item index): one item of one node."""


@dataclass(frozen=True)
class Outcome:
    """How one attempt ends when the simulator lets it finish."""

    succeeded: bool = True
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    exit_code: int | None = None
    retriable: bool = True
    hang: bool = False
    """Never finishes by itself: only a KillTask (timeout, deadline, stop) ends it."""
    infrastructure: bool = False
    """Failed for reasons outside the job (an evicted or lost pod)."""


OK = Outcome()
FAIL = Outcome(succeeded=False, message="boom", exit_code=1)
HANG = Outcome(hang=True)


def ok(**outputs: Any) -> Outcome:
    return Outcome(outputs=outputs, exit_code=0)


def fail(message: str = "boom", *, exit_code: int = 1, retriable: bool = True) -> Outcome:
    return Outcome(succeeded=False, message=message, exit_code=exit_code, retriable=retriable)


@dataclass
class Running:
    """A task the simulator is running: the decision that started it and when."""

    start: StartTask
    started_at: float
    outcome: Outcome

    @property
    def key(self) -> Key:
        return (self.start.node, self.start.index)


OutcomeFn = Callable[[StartTask], Outcome]
ChooseFn = Callable[[list[Running]], int]
"""Picks which finishable running task ends next (an index into the list given)."""


class Stuck(AssertionError):
    """Nothing is running, nothing is due, and the run is not finished: a hang."""


class Simulator:
    """Drives one run of `wf` to its end under a fake clock."""

    def __init__(
        self,
        wf: CompiledWorkflow,
        outcomes: OutcomeFn | Mapping[Key, Outcome | list[Outcome]] | None = None,
        *,
        choose: ChooseFn | None = None,
        start: float = 1000.0,
        tick: float = 1.0,
        max_steps: int = 10_000,
        check_index: bool = True,
    ) -> None:
        self.wf = wf
        self.check_index = check_index
        self.state = RunState.new(list(wf.order))
        self.now = start
        self.tick = tick
        self.max_steps = max_steps
        self._outcomes = outcomes
        self._choose = choose or (lambda running: 0)
        self.running: dict[Key, Running] = {}
        self.log: list[tuple[float, Decision]] = []
        """Every decision, with the fake time it was made at."""
        self.starts: list[tuple[float, StartTask]] = []
        self.events: list[TaskFinished] = []
        """Every TaskFinished the simulator reported, in order."""
        self.history: list[tuple[str, str, int, int]] = []
        """("start" or "end", node, index, attempt), interleaved as they happened."""
        self.plans: list[Plan] = []
        self.wakes: list[float | None] = []
        self.steps = 0
        self.checks: list[Callable[[Simulator], None]] = []
        """Called after every `advance` once its decisions are carried out, before kills end
        their tasks: the moment the most tasks run, with state and `running` consistent."""

    # --- what the test controls -------------------------------------------------------

    def outcome_for(self, start: StartTask) -> Outcome:
        spec = self._outcomes
        if spec is None:
            return OK
        if callable(spec):
            return spec(start)
        got = spec.get((start.node, start.index), OK)
        if isinstance(got, list):
            # One outcome per attempt; the last one repeats.
            return got[min(start.attempt, len(got)) - 1]
        return got

    # --- the executor loop ------------------------------------------------------------

    def settle(self) -> Plan:
        """Ask the planner, carry out its decisions, repeat until it has nothing to add."""
        while True:
            plan = advance(self.wf, self.state, self.now)
            if self.check_index:
                assert_index_consistent(self.wf, self.state)
            self.plans.append(plan)
            kills: list[KillTask] = []
            for decision in plan.decisions:
                self.log.append((self.now, decision))
                if isinstance(decision, StartTask):
                    key = (decision.node, decision.index)
                    assert key not in self.running, f"{key} started while running"
                    self.running[key] = Running(decision, self.now, self.outcome_for(decision))
                    self.starts.append((self.now, decision))
                    self.history.append(("start", decision.node, decision.index, decision.attempt))
                elif isinstance(decision, KillTask):
                    kills.append(decision)
            for check in self.checks:
                check(self)
            for kill in kills:
                self._kill(kill)
            if not kills:
                self.wakes.append(plan.wake_at)
                return plan

    def _kill(self, kill: KillTask) -> None:
        task = self.running.get((kill.node, kill.index))
        if task is None or task.start.attempt != kill.attempt:
            return
        self.finish(task, Outcome(succeeded=False, message="killed", exit_code=137))

    def finish(self, task: Running, outcome: Outcome | None = None) -> bool:
        """Report `task` as ended now; returns what `record_finished` said."""
        outcome = outcome or task.outcome
        del self.running[task.key]
        event = TaskFinished(
            node=task.start.node,
            index=task.start.index,
            attempt=task.start.attempt,
            succeeded=outcome.succeeded,
            at=self.now,
            exit_code=outcome.exit_code,
            outputs=dict(outcome.outputs),
            message=outcome.message,
            retriable=outcome.retriable,
            infrastructure=outcome.infrastructure,
        )
        self.events.append(event)
        self.history.append(("end", event.node, event.index, event.attempt))
        return record_finished(self.state, event)

    def step(self) -> bool:
        """Settle, then let one thing happen: a task ends, or the clock jumps to `wake_at`.

        Returns False once the run is finished.
        """
        plan = self.settle()
        if self.state.phase.finished:
            return False
        self.steps += 1
        if self.steps > self.max_steps:
            raise AssertionError(f"run did not finish within {self.max_steps} steps")
        finishable = [t for t in self.running.values() if not t.outcome.hang]
        wake = plan.wake_at
        if finishable and (wake is None or wake > self.now + self.tick):
            choice = self._choose(finishable)
            self.now += self.tick
            self.finish(finishable[choice % len(finishable)])
            return True
        if wake is None:
            raise Stuck(
                f"nothing can happen at t={self.now}: running={sorted(self.running)}, "
                f"phase={self.state.phase}"
            )
        assert wake > self.now, f"wake_at {wake} is not after now {self.now}"
        self.now = wake
        return True

    def run(self) -> RunState:
        while self.step():
            pass
        return self.state

    def complete(
        self, node: str, index: int = 0, outcome: Outcome | None = None, *, after: float = 1.0
    ) -> bool:
        """Advance the clock by `after` and end the running task (node, index) now."""
        self.now += after
        return self.finish(self.running[(node, index)], outcome)

    # --- views for assertions -----------------------------------------------------------

    def decisions(self, kind: type[D]) -> list[D]:
        """Every decision of one kind, in the order they were made."""
        return [d for _, d in self.log if isinstance(d, kind)]

    def started(self, node: str) -> list[StartTask]:
        return [s for _, s in self.starts if s.node == node]


def assert_index_consistent(wf: CompiledWorkflow, state: RunState) -> None:
    """The planner's maintained index says what one built afresh from the state says."""
    if state.index is None:
        return
    fresh = PlanIndex.build(wf.order, {n: c.deps for n, c in wf.nodes.items()}, state.nodes)
    kept = state.index
    assert (kept.pending, kept.ready, kept.running) == (fresh.pending, fresh.ready, fresh.running)
    assert kept.waiting_on == fresh.waiting_on
    assert list(kept.finished_context().items()) == list(fresh.finished_context().items())


def compile_spec(spec: dict[str, Any], params: dict[str, Any] | None = None) -> CompiledWorkflow:
    """Compile a workflow spec given in manifest form (camelCase keys)."""
    return compile_workflow(WorkflowSpec.model_validate(spec), WorkflowMeta(name="wf"), params)


def workflow(*nodes: dict[str, Any], **spec: Any) -> CompiledWorkflow:
    """A compiled workflow from node mappings; `job` defaults to the node's name."""
    full = [{"job": n["name"], **n} if "command" not in n else n for n in nodes]
    return compile_spec({"image": "worker:1", **spec, "nodes": full})
