"""The local executor: the planner's decisions carried out with child processes.

It is the same loop the Kubernetes executor runs, minus the API server: plan, act on the
decisions, then wait for the next thing that can change them — a child ending, or the
planner's own `wake_at` (a retry coming due, a timeout, the workflow deadline). There is
no polling: between events the loop sleeps with that deadline.

The loop is one generator (`_drive`) that yields how long it may sleep; `run_blocking`
sleeps in a `SelectReactor` (the plain CLI: no asyncio imported), `run` on the running
asyncio loop (`--ui`, whose dashboard is asyncio; tests). Artifact steps run on a thread
of their own and post their result back.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shoal.api.enums import NodePhase
from shoal.core.children import LOCAL_REFUSAL
from shoal.core.collector import Outcome
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import FinishNode, KillTask, LoadItems, StartTask, StoreOutputs
from shoal.core.file_outputs import wrap
from shoal.core.planner import advance
from shoal.core.state import (
    ItemsLoaded,
    OutputsStored,
    RunState,
    TaskFinished,
    bounded_finish,
    record_finished,
    record_items_loaded,
    record_outputs_stored,
    record_progress,
)
from shoal.local.child_poll import held as held_child_poll
from shoal.local.flow import LocalFlow, state_dir
from shoal.local.gate_files import GATE_POLL_SECONDS, read_approvals, suspend_marker
from shoal.local.inbox import Inbox
from shoal.local.logs import NodeLogs
from shoal.local.process import (
    KILL_GRACE_SECONDS,
    MAX_ARGS_ENV_BYTES,
    WORKER_USAGE_EXIT,
    LaunchError,
    LocalTask,
    import_env,
    launch,
    local_env,
    node_env,
    worker_argv,
)
from shoal.local.reactor import SelectReactor, current
from shoal.local.reporting import Reporter
from shoal.local.short_slice import request_short_slice
from shoal_worker.protocol import TOKEN_ENV, Message, ProgressMessage, new_token
from shoal_worker.records import Record

if TYPE_CHECKING:  # the store's modules load when a run first uses it (load_items)
    from shoal.artifact_steps import StoreFactory
    from shoal_worker.artifacts import ArtifactStore

LOCAL_WORKER = (sys.executable, "-m", "shoal_worker.runner")
"""This interpreter's worker: what wraps a command with `outputs` from files."""
STOP_BOUND_SECONDS = KILL_GRACE_SECONDS + 2.0
"""After a stop (SIGTERM, Ctrl-C), children still there this long later are SIGKILLed and
given up on, so `shoal run` always ends within a few seconds."""


class _Stop(Record):
    reason: str


_Event = TaskFinished | ItemsLoaded | OutputsStored | _Stop


def _no_store() -> ArtifactStore:
    from shoal_worker.artifacts import ArtifactError

    raise ArtifactError("no artifact store is configured (shoal run --artifacts URL)")


def read_items(store: StoreFactory, decision: LoadItems) -> Callable[[], ItemsLoaded]:
    """`artifact_steps.read_items` (blocking, for a thread), imported by the first run
    that reads the store: a run without one (most) does without its start-up cost."""
    from shoal.artifact_steps import read_items as read

    return functools.partial(read, store, decision)


def outputs_writer(
    store: StoreFactory, wf: CompiledWorkflow, state: RunState, decision: StoreOutputs
) -> Callable[[], OutputsStored]:
    """`artifact_steps.outputs_writer`, imported when first needed (as `read_items`)."""
    from shoal.artifact_steps import outputs_writer as writer

    return writer(store, wf, state, decision)


class LocalExecutor:
    """Runs one compiled workflow to its end on this machine."""

    def __init__(
        self,
        wf: CompiledWorkflow,
        *,
        workdir: Path,
        cwd: Path,
        reporter: Reporter,
        extra_pythonpath: list[Path] | None = None,
        imports: list[str] | None = None,
        store: StoreFactory | None = None,
        store_env: dict[str, str] | None = None,
    ) -> None:
        self.wf = wf
        self.store = store or _no_store
        self.state = RunState.new(list(wf.order))
        self.workdir = workdir
        self.cwd = cwd
        self.reporter = reporter
        self._events: Inbox[_Event] = Inbox()
        self._tasks: dict[tuple[str, int], LocalTask] = {}
        self._node_envs: dict[str, dict[str, str]] = {}
        """Each node's share of its children's environment, built at its first attempt."""
        self.logs = NodeLogs(workdir)
        self._workdir_text = os.path.join(workdir, "")
        self._suspend_marker = str(suspend_marker(workdir))
        base = import_env(os.environ, extra_pythonpath or [], imports or [])
        base.update(store_env or {})
        base["SHOAL_WORKFLOW_UID"] = wf.meta.uid
        self._base_env = base
        self._gates = {name for name, node in wf.nodes.items() if node.spec.suspend is not None}
        self.flow = LocalFlow(wf, self.state, state_dir(os.environ))
        """Locks within this run and the memo cache (local/flow.py)."""

    def request_stop(self, reason: str) -> None:
        """Stop the run (Ctrl-C): running children are terminated, nothing new starts."""
        self._events.post(_Stop(reason))

    def run_blocking(self) -> RunState:
        """Drive the run to a finished phase on a `SelectReactor` of its own, Ctrl-C and
        SIGTERM stopping it; every child is gone when this returns."""
        reactor = SelectReactor()
        with reactor.running():
            for signum, why in (
                (signal.SIGINT, "interrupted (Ctrl-C)"),
                (signal.SIGTERM, "terminated"),
            ):
                reactor.add_signal_handler(signum, self.request_stop, why)
            for bound in self._drive():
                self._events.wait_blocking(reactor, bound)
        return self.state

    async def run(self) -> RunState:
        """`run_blocking` on the running asyncio loop (which the caller's signal handlers
        and a dashboard share)."""
        for bound in self._drive():
            await self._events.wait(bound)
        return self.state

    def _drive(self) -> Iterator[float | None]:
        """The run, yielding whenever it waits for events (at most the yielded seconds;
        None: no bound); every child is gone when it ends."""
        self.reporter.begin(self.wf, self.state)
        try:
            with held_child_poll():  # one epoll for the run's children (local/child_poll.py)
                yield from self._loop()
                yield from self._kill_all("shoal run is exiting")
        finally:
            for task in list(self._tasks.values()):  # an error above, or left past the bound
                task.abandon()
            self.logs.close_all()
        self.reporter.end(self.wf, self.state)

    def _loop(self) -> Iterator[float | None]:
        """Plan, act, wait for what can change the plan; until the run is over."""
        while True:
            self._read_controls()
            step = advance(self.wf, self.state, time.time())
            replan = False
            for decision in step.decisions:
                if not isinstance(decision, StartTask):  # a start is told once spawned
                    self.reporter.decision(decision, self.state)
                replan = self.flow.act(decision) or replan
                if isinstance(decision, StartTask):
                    self._start(decision)
                    self.reporter.decision(decision, self.state)
                elif isinstance(decision, KillTask):
                    self._kill(decision)
                elif isinstance(decision, LoadItems):
                    self._on_thread(read_items(self.store, decision))
                elif isinstance(decision, StoreOutputs):
                    self._on_thread(outputs_writer(self.store, self.wf, self.state, decision))
                elif isinstance(decision, FinishNode):
                    self.logs.close(decision.node)
            if self.state.phase.finished and not self._tasks:
                return
            if replan:  # a lock was granted or a memo lookup answered
                continue
            timeout = None if step.wake_at is None else max(0.0, step.wake_at - time.time())
            if self._awaits_controls():  # a decision is a file here (local/gate_files.py)
                timeout = min(timeout or GATE_POLL_SECONDS, GATE_POLL_SECONDS)
            if not self._events:
                yield timeout  # local/inbox.py
            for event in self._events.take():  # all at once: one planner step
                self._handle(event)

    def _waiting_gates(self) -> set[str]:
        return {g for g in self._gates if self.state.nodes[g].phase is NodePhase.RUNNING}

    def _read_controls(self) -> None:
        """Take in `shoal resume/suspend --local` decisions (local/gate_files.py)."""
        self.state.suspended = os.path.exists(self._suspend_marker)  # once per event: no Path
        waiting = self._waiting_gates()
        if waiting:
            self.state.approvals.update(read_approvals(self.workdir, waiting))

    def _awaits_controls(self) -> bool:
        """A decision could change what happens next: a gate waits, or the run is suspended."""
        return self.state.suspended or bool(self._waiting_gates())

    def _on_thread(self, step: Callable[[], ItemsLoaded | OutputsStored]) -> None:
        """Run a blocking artifact step on a thread; its result is posted back on the loop
        (a run that ends meanwhile does not wait for it: the thread is a daemon)."""
        reactor = current()

        def work() -> None:
            result = step()  # never raises: a failure is the result's error
            reactor.call_soon_threadsafe(self._events.post, result)

        threading.Thread(target=work, name="shoal-artifact-step", daemon=True).start()

    def _handle(self, event: _Event) -> None:
        if isinstance(event, ItemsLoaded):
            record_items_loaded(self.state, event)
            return
        if isinstance(event, OutputsStored):
            record_outputs_stored(self.state, event)
            return
        if isinstance(event, _Stop):
            if self.state.stop_requested is None:
                self.state.stop_requested = event.reason
                current().call_later(STOP_BOUND_SECONDS, self._force_stop, event.reason)
            else:  # a second Ctrl-C: no more grace
                for task in self._tasks.values():
                    task.signal(signal.SIGKILL)
            return
        record_finished(self.state, event)
        self.reporter.task_finished(event, self.state)

    def _start(self, d: StartTask) -> None:
        node = self.wf.nodes[d.node]
        # An attempt's own files live only while it runs (see process._termination_message).
        stem = f"{self._workdir_text}{d.node}.{d.index}-{d.attempt}"  # str: per item, no Path
        termination = f"{stem}.termination-log"
        task = LocalTask(start=d, token=new_token(), capture_stdout=node.spec.capture_stdout)
        self._tasks[task.key] = task
        if node.spec.workflow is not None:  # core/children.py: a cluster-only node
            self._finish(task, False, None, {}, LOCAL_REFUSAL, retriable=False)
            return
        shared = self._node_envs.get(d.node)
        if shared is None:
            shared = self._node_envs[d.node] = node_env(self.wf, node, self._base_env)
        try:
            env = local_env(self.wf, node, d, self._base_env, shared)
        except LaunchError as err:
            self._finish(task, succeeded=False, exit_code=None, outputs={}, message=str(err))
            return
        env["SHOAL_TERMINATION_MESSAGE_PATH"] = termination
        env[TOKEN_ENV] = task.token
        if node.spec.job is not None:
            args = json.dumps(d.args)
            args_file: Path | None = None
            if len(args.encode()) <= MAX_ARGS_ENV_BYTES:
                env["SHOAL_ARGS"] = args
            else:
                args_file = Path(f"{stem}.args.json")
                args_file.write_text(args, encoding="utf-8")
                task.transient.append(args_file)
            argv = worker_argv(node.spec.job, args_file, Path(termination))
        elif d.command:
            argv = wrap(node.spec, [*d.command, *(d.args or [])], LOCAL_WORKER)
        else:
            message = f"image {node.image!r} has no command to run locally; set `command`"
            self._finish(task, succeeded=False, exit_code=None, outputs={}, message=message)
            return
        log = self.logs.attempt(d.node, d.index, d.attempt, node.fan_out)
        if len(self._tasks) > 1:  # children overlap: spawns must not wait (local/short_slice.py)
            request_short_slice()
        settle = functools.partial(self._settle, task)  # called when the child is done
        try:  # spawned now, not a loop turn later (local/spawn.py)
            failed = launch(task, argv, env, self.cwd, self._on_message, log, settle)
        except Exception as err:  # never let one child's error hang the run
            self._finish(task, False, None, {}, f"local executor error: {err!r}")
            return
        log.begin()  # the node's log file is opened while the child starts
        if failed is not None:
            self._settle(task, failed)

    def _force_stop(self, reason: str) -> None:
        """The bound on a stop: whatever child is left after it is killed and given up."""
        for task in list(self._tasks.values()):
            message = f"{reason}; killed: still running {STOP_BOUND_SECONDS:g}s after the stop"
            self._finish(task, False, None, {}, message)  # first: abandon may settle it
            task.abandon()

    def _settle(self, task: LocalTask, outcome: Outcome) -> None:
        if not outcome.outputs_complete:
            missing = ", ".join(outcome.missing_outputs)
            self._finish(task, False, outcome.exit_code, {}, f"outputs lost: {missing}")
            return
        is_job = self.wf.nodes[task.start.node].spec.job is not None
        self._finish(
            task,
            outcome.succeeded,
            outcome.exit_code,
            outcome.outputs,
            outcome.message,
            retriable=not (is_job and outcome.exit_code == WORKER_USAGE_EXIT),
        )

    def _finish(
        self,
        task: LocalTask,
        succeeded: bool,
        exit_code: int | None,
        outputs: dict[str, object],
        message: str,
        *,
        retriable: bool = True,
    ) -> None:
        if self._tasks.get(task.key) is not task:
            return  # already given up on by a forced stop
        del self._tasks[task.key]
        d = task.start
        event = TaskFinished(
            node=d.node,
            index=d.index,
            attempt=d.attempt,
            succeeded=succeeded,
            at=time.time(),
            exit_code=exit_code,
            outputs=dict(outputs),
            message=message,
            retriable=retriable,
        )
        self._events.post(bounded_finish(event) if outputs else event)  # no outputs: no walk

    def _on_message(self, node: str, index: int, msg: Message) -> None:
        if isinstance(msg, ProgressMessage):
            record_progress(self.state, node, msg.percent)
        self.reporter.message(node, index if self.state.nodes[node].fan_out else None, msg)

    def _kill(self, d: KillTask) -> None:
        task = self._tasks.get((d.node, d.index))
        if task is not None and task.start.attempt == d.attempt:
            task.kill(d.reason)

    def _kill_all(self, reason: str) -> Iterator[float | None]:
        """Leave no orphan: terminate every child still running, and wait (bounded) until
        each is reaped; artifact steps still on their threads are not waited for."""
        for task in list(self._tasks.values()):
            task.kill(reason)
        deadline = time.monotonic() + STOP_BOUND_SECONDS
        while self._tasks and (left := deadline - time.monotonic()) > 0:
            if not self._events:
                yield left
            for event in self._events.take():
                if isinstance(event, TaskFinished):
                    self._handle(event)
