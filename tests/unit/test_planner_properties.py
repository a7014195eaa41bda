"""Property tests: the planner's invariants over random DAGs, outcomes and completion orders.

Hypothesis draws a workflow (up to 12 nodes, random acyclic `dependsOn`, runPolicy, constant
`when`, fan-outs over literal lists or upstream outputs, parallelism, retries with or
without a `retryPolicy`, timeouts, deadline, sometimes an exit handler) and a script for
the simulated executor (each attempt's outcome: success, failure, non-retriable failure,
hang until killed, lost pod; which running task ends next; whether a stop is requested).
The run is then checked step by step.

Set SHOAL_PROPERTY_EXAMPLES to explore more (or fewer) examples than the default 200.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.api.workflow import NodePhase, RetryOn, RunPolicy, WorkflowPhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import (
    BeginShutdown,
    FailTask,
    FinishNode,
    FinishWorkflow,
    RetryTask,
    StartTask,
)
from shoal.core.planner import INFRASTRUCTURE_RETRY_DELAY, advance
from shoal.core.state import MAX_INFRASTRUCTURE_RETRIES, RunState
from tests.unit.simulator import Outcome, Running, Simulator, compile_spec

PROPERTIES = settings(
    max_examples=int(os.environ.get("SHOAL_PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

STOP_REASON = "stopped by the property test"


@dataclass(frozen=True)
class Scenario:
    """A workflow spec and everything the simulated executor will do with it."""

    spec: dict[str, Any]
    outcomes: tuple[tuple[str, int], ...]
    """One (kind, list size) per started attempt, in start order (an item whose kind sticks
    takes none); once they run out, every attempt succeeds."""
    picks: tuple[int, ...]
    """Which finishable task ends next, per step (modulo how many there are); then the first."""
    stop_at: int | None
    """Request a stop before this step, if set."""
    tick: float


# A kind ending in "*" sticks: every later attempt of that item ends the same way.
_FAILURES = ["fail", "fatal", "hang", "lost", "fail*", "hang*", "lost*"]

# Mostly onSuccess, so that runs are long enough to be interesting.
_POLICIES = [RunPolicy.ON_SUCCESS] * 3 + [RunPolicy.ALWAYS, RunPolicy.ON_FAILURE]
# Mostly no retryPolicy (free retries after a lost pod), sometimes each of Argo's three.
_RETRY_ON = [None, None, RetryOn.ON_FAILURE, RetryOn.ON_ERROR, RetryOn.ALWAYS]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(1, 12))
    nodes: list[dict[str, Any]] = []
    for i in range(count):
        name = f"n{i}"
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        node: dict[str, Any] = {
            "name": name,
            "job": "work",
            "dependsOn": [f"n{d}" for d in deps],
            "runPolicy": draw(st.sampled_from(_POLICIES)).value,
        }
        when = draw(st.sampled_from([None, None, None, None, "true", "false"]))
        if when is not None:
            node["when"] = when
        fan = draw(st.sampled_from(["none", "none", "literal", "upstream"]))
        if fan == "literal":
            node["forEach"] = list(range(draw(st.integers(1, 8))))
        elif fan == "upstream" and deps:
            source = draw(st.sampled_from(deps))
            node["forEach"] = f"${{{{ nodes.n{source}.outputs.list }}}}"
        if "forEach" in node:
            node["itemArg"] = "item"
            node["failFast"] = draw(st.booleans())
            parallelism = draw(st.one_of(st.none(), st.integers(1, 4)))
            if parallelism is not None:
                node["parallelism"] = parallelism
        limit = draw(st.integers(0, 2))
        if limit:
            node["retries"] = {
                "limit": limit,
                "backoffSeconds": draw(st.sampled_from([0, 0.5, 2, 5])),
                "factor": draw(st.sampled_from([1, 2, 3])),
                "maxBackoffSeconds": draw(st.sampled_from([1, 4, 300])),
            }
            retry_on = draw(st.sampled_from(_RETRY_ON))
            if retry_on is not None:
                node["retries"]["retryPolicy"] = retry_on.value
        timeout = draw(st.sampled_from([None, None, 3, 10]))
        if timeout is not None:
            node["timeoutSeconds"] = timeout
        nodes.append(node)
    spec: dict[str, Any] = {"image": "worker:1", "nodes": nodes}
    if count > 1 and draw(st.sampled_from([False, False, True])):
        # The last node becomes the exit handler: nothing depends on it (dependencies
        # point to earlier nodes) and it has none of its own; it may still read any node.
        nodes[-1].update(dependsOn=[], runPolicy=RunPolicy.ON_SUCCESS.value)
        spec["onExit"] = nodes[-1]["name"]
    parallelism = draw(st.one_of(st.none(), st.integers(1, 5)))
    if parallelism is not None:
        spec["parallelism"] = parallelism
    deadline = draw(st.sampled_from([None, None, 8, 20, 60]))
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    # How hostile this run's executor is: successes per kind of failure.
    successes = draw(st.sampled_from([16, 4, 1]))
    outcome = st.tuples(st.sampled_from(["ok"] * successes + _FAILURES), st.integers(0, 8))
    return Scenario(
        spec=spec,
        outcomes=tuple(draw(st.lists(outcome, max_size=120))),
        picks=tuple(draw(st.lists(st.integers(0, 15), max_size=120))),
        stop_at=draw(st.sampled_from([None] * 6 + [1, 4, 10, 25])),
        tick=draw(st.sampled_from([0.5, 1.0, 4.0])),
    )


@dataclass
class Trace:
    """One simulated run and what the per-step checks saw."""

    wf: CompiledWorkflow
    sim: Simulator
    first_phase: dict[str, NodePhase] = field(default_factory=dict)
    """The first terminal phase each node was seen in."""
    phase_changes: list[str] = field(default_factory=list)
    peak_total: int = 0
    peak: dict[str, int] = field(default_factory=dict)
    limit_violations: list[str] = field(default_factory=list)

    @property
    def state(self) -> RunState:
        return self.sim.state


def simulate(scenario: Scenario) -> Trace:
    wf = compile_spec(scenario.spec)
    script = iter(scenario.outcomes)
    picks = iter(scenario.picks)

    sticky: dict[tuple[str, int], str] = {}

    def outcome(start: StartTask) -> Outcome:
        key = (start.node, start.index)
        kind, size = (sticky[key], 0) if key in sticky else next(script, ("ok", 0))
        if kind.endswith("*"):
            sticky[key] = kind
            kind = kind[:-1]
        node = wf.nodes[start.node]
        if kind == "hang" and node.timeout_seconds is None and wf.active_deadline_seconds is None:
            kind = "fail"  # nothing would ever end it
        if kind == "ok":
            return Outcome(outputs={"list": list(range(size)), "index": start.index})
        if kind == "hang":
            return Outcome(hang=True)
        if kind == "lost":
            return Outcome(succeeded=False, message="pod lost", infrastructure=True)
        return Outcome(succeeded=False, message=kind, exit_code=1, retriable=kind == "fail")

    def choose(running: list[Running]) -> int:
        return next(picks, 0)

    bound = _step_bound(wf)
    sim = Simulator(wf, outcome, choose=choose, tick=scenario.tick, max_steps=bound)
    trace = Trace(wf, sim)
    sim.checks.append(lambda s: _observe(trace))
    while True:
        if scenario.stop_at is not None and sim.steps == scenario.stop_at:
            sim.state.stop_requested = STOP_REASON
        if not sim.step():
            break
    return trace


def _step_bound(wf: CompiledWorkflow) -> int:
    """Steps a run may take: each attempt (counted, or free after a lost pod) ends once and
    fires at most two timers (its timeout, then its retry), plus the deadline. A fan-out
    over an upstream output has at most 8 items: the list is an attempt's output (up to 8
    entries) or a fan-out's aggregate (one entry per item, up to 8)."""
    attempts = 0
    for node in wf.nodes.values():
        if isinstance(node.for_each, list):
            items = len(node.for_each)
        elif node.for_each is not None:
            items = 8
        else:
            items = 1
        attempts += items * (node.retries.limit + 1 + MAX_INFRASTRUCTURE_RETRIES)
    return 3 * attempts + 5


def _observe(trace: Trace) -> None:
    """Runs after every `advance`: limits, counters and phase stability."""
    sim, wf = trace.sim, trace.wf
    per_node: dict[str, int] = defaultdict(int)
    for node, _ in sim.running:
        per_node[node] += 1
    assert sim.state.running == len(sim.running)
    if wf.parallelism is not None and len(sim.running) > wf.parallelism:
        trace.limit_violations.append(f"{len(sim.running)} running > workflow {wf.parallelism}")
    for node, n in per_node.items():
        assert sim.state.nodes[node].running == n
        limit = wf.nodes[node].parallelism
        if limit is not None and n > limit:
            trace.limit_violations.append(f"{n} items of {node} running > {limit}")
        trace.peak[node] = max(trace.peak.get(node, 0), n)
    trace.peak_total = max(trace.peak_total, len(sim.running))
    for name, ns in sim.state.nodes.items():
        if not ns.phase.finished:
            continue
        first = trace.first_phase.setdefault(name, ns.phase)
        if first is not ns.phase:
            trace.phase_changes.append(f"{name}: {first} -> {ns.phase}")


def _shut_down(trace: Trace) -> BeginShutdown | None:
    shutdowns = trace.sim.decisions(BeginShutdown)
    assert len(shutdowns) <= 1
    return shutdowns[0] if shutdowns else None


def _named(policy: RetryOn | None, infrastructure: bool) -> bool:
    """Whether `retries.retryPolicy` retries this kind of failure (None: every kind)."""
    if policy is None or policy is RetryOn.ALWAYS:
        return True
    return infrastructure is (policy is RetryOn.ON_ERROR)


# --- the properties -----------------------------------------------------------------------


@PROPERTIES
@given(scenarios())
def test_a_task_never_starts_before_its_node_dependencies_finished(scenario: Scenario) -> None:
    # The exit handler's dependencies are every other node.
    trace = simulate(scenario)
    others = tuple(n for n in trace.wf.order if n != trace.wf.on_exit)
    finished_at_entry: dict[str, int] = {}
    for position, (_, decision) in enumerate(trace.sim.log):
        if isinstance(decision, FinishNode):
            finished_at_entry[decision.node] = position
        elif isinstance(decision, StartTask):
            deps = others if decision.node == trace.wf.on_exit else ()
            for dep in (*trace.wf.nodes[decision.node].deps, *deps):
                assert finished_at_entry.get(dep, position) < position, (
                    f"{decision.node}[{decision.index}] started before {dep} finished"
                )


@PROPERTIES
@given(scenarios())
def test_parallelism_is_never_exceeded(scenario: Scenario) -> None:
    trace = simulate(scenario)
    assert trace.limit_violations == []
    if trace.wf.parallelism is not None:
        assert trace.peak_total <= trace.wf.parallelism
    for name, peak in trace.peak.items():
        limit = trace.wf.nodes[name].parallelism
        assert limit is None or peak <= limit


@PROPERTIES
@given(scenarios())
def test_every_run_terminates_within_a_bound(scenario: Scenario) -> None:
    # `simulate` raises if a run exceeds its step bound or can make no progress (a hang).
    trace = simulate(scenario)
    assert trace.state.phase.finished
    assert trace.state.running == 0
    assert trace.sim.running == {}
    assert trace.sim.decisions(FinishWorkflow) == [
        FinishWorkflow(trace.state.phase, trace.state.message)
    ]
    # Once finished, nothing more is ever decided.
    assert advance(trace.wf, trace.state, trace.sim.now + 10_000).decisions == []


@PROPERTIES
@given(scenarios())
def test_every_node_ends_in_exactly_one_terminal_phase(scenario: Scenario) -> None:
    trace = simulate(scenario)
    assert trace.phase_changes == []
    finishes = trace.sim.decisions(FinishNode)
    assert sorted(f.node for f in finishes) == sorted(trace.wf.order)
    for f in finishes:
        assert f.phase.finished
        assert trace.state.nodes[f.node].phase is f.phase
        assert trace.first_phase[f.node] is f.phase
    for name, ns in trace.state.nodes.items():
        assert ns.tasks == {}, name
        if ns.phase is NodePhase.SUCCEEDED:
            assert (ns.succeeded, ns.failed) == (ns.total, 0)
        if ns.phase in (NodePhase.SKIPPED, NodePhase.OMITTED):
            assert ns.attempts == 0


@PROPERTIES
@given(scenarios())
def test_an_item_runs_one_attempt_at_a_time_numbered_one_by_one(scenario: Scenario) -> None:
    trace = simulate(scenario)
    running: set[tuple[str, int]] = set()
    last_attempt: dict[tuple[str, int], int] = defaultdict(int)
    free: dict[tuple[str, int], int] = defaultdict(int)
    for retry in trace.sim.decisions(RetryTask):
        free[(retry.node, retry.index)] += retry.free
    for key, n in free.items():
        assert n <= MAX_INFRASTRUCTURE_RETRIES, key
    for what, node, index, attempt in trace.sim.history:
        key = (node, index)
        if what == "start":
            assert key not in running, f"{key} attempt {attempt} started while one runs"
            assert attempt == last_attempt[key] + 1, (
                f"{key}: attempt {attempt} after {last_attempt[key]}"
            )
            assert attempt - free[key] <= trace.wf.nodes[node].retries.limit + 1
            last_attempt[key] = attempt
            running.add(key)
        else:
            assert key in running
            assert attempt == last_attempt[key]
            running.remove(key)
    assert running == set()
    # Every attempt that started ended exactly once (by itself, or killed).
    started = [(s.node, s.index, s.attempt) for _, s in trace.sim.starts]
    ended = [(e.node, e.index, e.attempt) for e in trace.sim.events]
    assert sorted(started) == sorted(ended)
    assert len(set(started)) == len(started)


@PROPERTIES
@given(scenarios())
def test_retries_wait_exactly_the_backoff(scenario: Scenario) -> None:
    trace = simulate(scenario)
    ended = {(e.node, e.index, e.attempt): e for e in trace.sim.events}
    starts = {(s.node, s.index, s.attempt): at for at, s in trace.sim.starts}
    attempt_of: dict[tuple[str, int], int] = {}
    free: dict[tuple[str, int], int] = defaultdict(int)
    for at, decision in trace.sim.log:
        if isinstance(decision, StartTask):
            attempt_of[(decision.node, decision.index)] = decision.attempt
        elif isinstance(decision, RetryTask):
            key = (decision.node, decision.index)
            attempt = attempt_of[key]
            event = ended[(decision.node, decision.index, attempt)]
            assert not event.succeeded
            policy = trace.wf.nodes[decision.node].retries.retry_policy
            assert _named(policy, event.infrastructure), (decision, policy)
            if decision.free:  # a lost pod: retried soon, without spending retries.limit
                assert event.infrastructure
                assert policy is None
                delay = INFRASTRUCTURE_RETRY_DELAY
                free[key] += 1
            else:
                delay = trace.wf.nodes[decision.node].retries.delay(attempt - free[key])
            assert decision.at == event.at + delay
            assert at >= event.at
            retried = starts.get((decision.node, decision.index, attempt + 1))
            if retried is not None:
                assert retried >= decision.at


@PROPERTIES
@given(scenarios())
def test_an_item_fails_for_good_only_once_its_retries_are_spent(scenario: Scenario) -> None:
    trace = simulate(scenario)
    ended = {(e.node, e.index, e.attempt): e for e in trace.sim.events}
    attempt_of: dict[tuple[str, int], int] = {}
    free: dict[tuple[str, int], int] = defaultdict(int)
    for _, decision in trace.sim.log:
        if isinstance(decision, BeginShutdown):
            return  # a shutdown fails items without retrying them
        if isinstance(decision, StartTask):
            attempt_of[(decision.node, decision.index)] = decision.attempt
        elif isinstance(decision, RetryTask):
            free[(decision.node, decision.index)] += decision.free
        elif isinstance(decision, FailTask) and (decision.node, decision.index) in attempt_of:
            key = (decision.node, decision.index)
            event = ended[(*key, attempt_of[key])]
            policy = trace.wf.nodes[decision.node].retries.retry_policy
            if not _named(policy, event.infrastructure):
                continue  # a failure its retryPolicy does not name is never retried
            if event.infrastructure and policy is None:
                assert free[key] == MAX_INFRASTRUCTURE_RETRIES, (key, free[key])
            if event.retriable:
                limit = trace.wf.nodes[decision.node].retries.limit
                assert attempt_of[key] - free[key] == limit + 1, key


@PROPERTIES
@given(scenarios())
def test_fail_fast_starts_no_new_item_after_an_item_failed_for_good(scenario: Scenario) -> None:
    trace = simulate(scenario)
    failed_for_good: set[str] = set()
    for _, decision in trace.sim.log:
        if isinstance(decision, FailTask):
            failed_for_good.add(decision.node)
        elif (
            isinstance(decision, StartTask)
            and decision.attempt == 1
            and trace.wf.nodes[decision.node].fail_fast
        ):
            assert decision.node not in failed_for_good, decision


@PROPERTIES
@given(scenarios())
def test_the_run_succeeds_iff_no_node_failed(scenario: Scenario) -> None:
    # A failed exit handler counts like any failed node, but is named as the exit handler.
    trace = simulate(scenario)
    state = trace.state
    shutdown = _shut_down(trace)
    exit_node = trace.wf.on_exit
    failed = [n for n in trace.wf.order if state.nodes[n].phase is NodePhase.FAILED]
    others = [n for n in failed if n != exit_node]
    note = ""
    if exit_node in failed:
        note = f"exit handler {exit_node!r} failed: {state.nodes[exit_node].message}"
    if shutdown is None:
        assert (state.phase is WorkflowPhase.SUCCEEDED) == (not failed)
        assert state.phase in (WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED)
        if others:
            assert state.message.startswith(f"node {others[0]!r} failed: ")
        elif note:
            assert state.message == note
        if others and note:
            assert state.message.endswith(f"; {note}")
        return
    # A shutdown ends the run as it said, whatever the nodes did (the exit handler's
    # failure, if any, added to the message).
    reason = f"{shutdown.reason}; {note}" if note else shutdown.reason
    assert (state.phase, state.message) == (shutdown.phase, reason)
    if shutdown.phase is WorkflowPhase.STOPPED:
        assert shutdown.reason == STOP_REASON
    else:
        deadline = trace.wf.active_deadline_seconds
        assert deadline is not None
        assert shutdown.reason == f"workflow exceeded activeDeadlineSeconds ({deadline:g}s)"
        assert state.started_at is not None
        assert state.finished_at is not None
        assert state.finished_at >= state.started_at + deadline
    # Nothing starts once the shutdown began, but `runPolicy: always` nodes during a stop
    # and the exit handler during a stop or after the deadline.
    begun = trace.sim.log.index(next((t, d) for t, d in trace.sim.log if d == shutdown))
    started = {d.node for _, d in trace.sim.log[begun:] if isinstance(d, StartTask)}
    started.discard(exit_node)
    if shutdown.phase is WorkflowPhase.STOPPED:
        always = {n for n in started if trace.wf.nodes[n].run_policy is RunPolicy.ALWAYS}
        started -= always
    assert not started


@PROPERTIES
@given(scenarios())
def test_the_exit_handler_always_runs_last(scenario: Scenario) -> None:
    trace = simulate(scenario)
    exit_node = trace.wf.on_exit
    if exit_node is None:
        return
    # Never Omitted (no terminate here): it runs, fails, or its `when` skips it.
    assert trace.state.nodes[exit_node].phase is not NodePhase.OMITTED
    first_start = next(
        (
            i
            for i, (_, d) in enumerate(trace.sim.log)
            if isinstance(d, StartTask) and d.node == exit_node
        ),
        None,
    )
    if first_start is None:
        return
    for _, decision in trace.sim.log[first_start:]:
        if isinstance(decision, StartTask):
            assert decision.node == exit_node, decision


@PROPERTIES
@given(scenarios())
def test_the_same_inputs_give_the_same_decisions(scenario: Scenario) -> None:
    first = simulate(scenario)
    second = simulate(scenario)
    assert first.sim.plans == second.sim.plans  # every decision and wake time, step by step
    assert first.sim.log == second.sim.log
    assert first.sim.events == second.sim.events
    assert (first.state.phase, first.state.message) == (second.state.phase, second.state.message)
