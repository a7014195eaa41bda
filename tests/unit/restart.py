"""Simulated operator restarts, for the status tests (a test helper, not product code).

A run is driven by the simulated executor (`simulator.py`) and cut at some step: what a
restarted operator would find then is the Workflow's status (`render_status` of the state
at the cut, or of an earlier state when the last status writes had not landed) and the
Jobs in the cluster (every attempt started so far, except those of nodes the status shows
Succeeded, whose Jobs may already be deleted). `rebuild_state` turns that back into a
RunState, the executor re-reports the end of every rebuilt attempt whose pod had already
ended, and the run carries on. Outcomes and the order in which running tasks end are a
function of (node, item, attempt) and start time only, so the interrupted and the
uninterrupted runs can be compared.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import StartTask
from shoal.core.state import RunState, TaskFinished, TaskPhase, record_finished
from shoal.kube.status import InFlight, rebuild_state, render_status
from tests.unit.simulator import Outcome, Running, Simulator

Attempt = tuple[str, int, int]
"""(node, item index, attempt number): one Job."""

STOP_REASON = "stopped (spec.stop)"


def _hash(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


@dataclass(frozen=True)
class Script:
    """Everything the simulated cluster does, as a function of (node, item, attempt)."""

    kinds: tuple[str, ...] = ("ok",)
    """Outcome kinds (ok, fail, fatal, hang, lost), picked by a hash of the attempt."""
    sizes: tuple[int, ...] = (3,)
    """Length of the `list` output a successful attempt reports, picked the same way."""
    salt: int = 0
    tick: float = 1.0
    stop_at: float | None = None
    """Request a stop once the clock reaches this time."""

    def outcome(self, wf: CompiledWorkflow, start: StartTask) -> Outcome:
        h = _hash(self.salt, start.node, start.index, start.attempt)
        kind = self.kinds[h % len(self.kinds)]
        can_end = wf.nodes[start.node].timeout_seconds is not None
        if kind == "hang" and not (can_end or wf.active_deadline_seconds):
            kind = "fail"  # nothing would ever end it
        if kind == "ok":
            size = self.sizes[(h >> 8) % len(self.sizes)]
            outputs = {"list": list(range(size)), "tag": f"{start.node}.{start.index}"}
            return Outcome(outputs=outputs, exit_code=0)
        if kind == "hang":
            return Outcome(hang=True)
        if kind == "lost":
            return Outcome(succeeded=False, message="pod lost", infrastructure=True)
        return Outcome(succeeded=False, message=kind, exit_code=1, retriable=kind == "fail")

    def choose(self, running: list[Running]) -> int:
        """The task that ends next: the earliest to end by its (hashed) duration."""

        def end(i: int) -> tuple[float, str, int]:
            start = running[i].start
            duration = 1 + _hash(self.salt, "d", start.node, start.index, start.attempt) % 7
            return (running[i].started_at + duration, start.node, start.index)

        return min(range(len(running)), key=end)

    def simulator(self, wf: CompiledWorkflow, start: float = 1000.0) -> Simulator:
        return Simulator(
            wf,
            lambda s: self.outcome(wf, s),
            choose=self.choose,
            start=start,
            tick=self.tick,
            max_steps=2000,
        )


def drive(sim: Simulator, script: Script, steps: int | None = None) -> bool:
    """Step `sim` (at most `steps` times); True once the run is finished."""
    while steps is None or sim.steps < steps:
        if script.stop_at is not None and sim.now >= script.stop_at:
            sim.state.stop_requested = sim.state.stop_requested or STOP_REASON
        if not sim.step():
            return True
    return False


def before_the_crash(script: Script, wf: CompiledWorkflow, steps: int) -> Simulator | None:
    """A run driven `steps` steps, then its last planning pass before the crash (whose
    Jobs may or may not exist); None when it finished first."""
    part = script.simulator(wf)
    if drive(part, script, steps=steps):
        return None
    if script.stop_at is not None and part.now >= script.stop_at:
        part.state.stop_requested = part.state.stop_requested or STOP_REASON
    part.settle()
    return part


@dataclass
class Cut:
    """What a restarted operator finds, and what the cluster keeps doing meanwhile."""

    now: float
    status: dict[str, Any]
    jobs: list[InFlight]
    ended: dict[Attempt, TaskFinished]
    """Attempts whose pods had ended by the cut, with what their pods say."""
    running: list[Running]
    """Attempts still running at the cut: they end later, as the script says."""
    stop_requested: str | None


def cut(
    sim: Simulator,
    status: dict[str, Any] | None = None,
    *,
    lost_creations: Callable[[Attempt], bool] = lambda _: False,
) -> Cut:
    """The cluster as `sim` left it. `status` defaults to the state's own; `lost_creations`
    drops the Jobs of attempts decided in the very last planning pass, as if the operator
    died before their create requests landed."""
    status = status if status is not None else render_status(sim.wf, sim.state)
    succeeded = {n for n, e in status["nodes"].items() if e["phase"] == "Succeeded"}
    last_pass = {(s.node, s.index, s.attempt) for t, s in sim.starts if t == sim.now} & {
        (r.start.node, r.start.index, r.start.attempt) for r in sim.running.values()
    }
    ended = {(e.node, e.index, e.attempt): e for e in sim.events}
    jobs: list[InFlight] = []
    running: list[Running] = []
    for started_at, start in sim.starts:
        key = (start.node, start.index, start.attempt)
        if start.node in succeeded or (key in last_pass and lost_creations(key)):
            continue
        lost_pod = key in ended and ended[key].infrastructure
        jobs.append(InFlight(*key, started_at, infrastructure=lost_pod))
    for task in sim.running.values():
        key = (task.start.node, task.start.index, task.start.attempt)
        if not (key in last_pass and lost_creations(key)):
            running.append(task)
    return Cut(sim.now, status, jobs, ended, running, sim.state.stop_requested)


@dataclass
class Restart:
    """The run carried on by a restarted operator."""

    sim: Simulator
    cut: Cut
    duplicates: list[Attempt] = field(default_factory=list)
    """Attempts started again although their Job already existed."""


def restart(wf: CompiledWorkflow, script: Script, at: Cut) -> Restart:
    """Rebuild from `at`, re-report the ends the cluster already shows, and finish the run."""
    state = rebuild_state(wf, at.status, at.jobs, stop_requested=at.stop_requested)
    sim = script.simulator(wf, start=at.now)
    sim.state = state
    live = {(r.start.node, r.start.index, r.start.attempt): r for r in at.running}
    sim.running = {(r.start.node, r.start.index): r for r in at.running}
    reported = report_ended(state, at, live)
    sim.events.extend(reported)
    existing = {(j.node, j.index, j.attempt) for j in at.jobs}
    result = Restart(sim, at)

    def no_duplicates(s: Simulator) -> None:
        for _, start in s.starts:
            key = (start.node, start.index, start.attempt)
            if key in existing and key not in result.duplicates:
                result.duplicates.append(key)

    sim.checks.append(no_duplicates)
    drive(sim, script)
    return result


def report_ended(state: RunState, at: Cut, live: dict[Attempt, Running]) -> list[TaskFinished]:
    """What the executor does first after a rebuild: every rebuilt running task whose pod has
    already ended is reported through the ordinary path."""
    reported = []
    for name, ns in state.nodes.items():
        for task in list(ns.tasks.values()):
            if task.phase is not TaskPhase.RUNNING:
                assert task.attempt == 0, (name, task)  # never created: started again
                continue
            key = (name, task.index, task.attempt)
            if key in live:
                continue
            event = at.ended.get(key)
            assert event is not None, f"rebuilt task {key} has neither a live pod nor an end"
            assert record_finished(state, event), key
            reported.append(event)
    return reported
