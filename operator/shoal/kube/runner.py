"""One Workflow on Kubernetes: the planner's decisions carried out as Jobs.

The loop is the local executor's: plan, act, wait for the next observation or the
planner's wake time. Observations are pod events routed here by the operator's single
pod watch, so the Job for a dependent node is created the moment its predecessor's pod
is seen to end — there is no requeue interval.

Ordering rules that make restarts safe:
- Job names are deterministic per (workflow uid, node, item, attempt): re-creating is a
  no-op (409), so whatever was dispatched before a crash is adopted, never duplicated.
- A finished attempt's Job is deleted only after a status write that records its result
  has succeeded; until then the pod (its log and termination message) is the record.

Trust: a pod counts for an attempt only if it is in this Workflow's namespace and its
controller is the Job whose uid the API server returned for that attempt (ownership.py);
labels merely say which attempt a pod claims to be. And no Job is created before every
node's ServiceAccount passed the administrator's policy (service_accounts.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shoal.api.workflow import NodePhase, Workflow, WorkflowPhase, WorkflowStatus
from shoal.artifact_steps import load_items, store_outputs, workflow_prefix
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta
from shoal.core.decisions import (
    Decision,
    FinishNode,
    FinishWorkflow,
    KillTask,
    LoadItems,
    StartTask,
    StoreOutputs,
)
from shoal.core.flow_gates import GateEvent, record_gate_event
from shoal.core.planner import NeedItems, advance
from shoal.core.state import (
    ItemsLoaded,
    OutputsStored,
    RunState,
    TaskFinished,
    record_finished,
    record_items_loaded,
    record_outputs_stored,
    record_progress,
)
from shoal.core.status import status_dict
from shoal.core.status_reader import read_status
from shoal.core.validation import InvalidWorkflow, compile_workflow
from shoal.kube.adoption import adopt
from shoal.kube.api import (
    ApiError,
    KubeApi,
    jobs_path,
    pods_path,
    service_accounts_path,
    workflows_path,
)
from shoal.kube.artifact_store import ArtifactDefaults, WorkflowStore
from shoal.kube.attempts import Attempt, LogFollower, dispatched, followers, outcome_event
from shoal.kube.children import ChildWorkflows
from shoal.kube.deadlines import deadline_of, next_deadline
from shoal.kube.flow import KubeFlow
from shoal.kube.item_jobs import JobCleanup
from shoal.kube.jobs import ArgsTooLarge, JobDefaults, build_job, job_token
from shoal.kube.naming import job_name, workflow_selector
from shoal.kube.ownership import in_namespace, job_problem, pod_problem
from shoal.kube.pod_gc import PodCleanup
from shoal.kube.pods import PodView, pending_verdict, read_pod
from shoal.kube.run_controls import apply_controls
from shoal.kube.service_accounts import ServiceAccountPolicy, needs_labels
from shoal.kube.service_accounts import check as check_service_accounts
from shoal.kube.service_accounts import uses as sa_uses
from shoal.kube.sinks import AttemptSink, EventSink, ImpostorSink, LogSink, NullLogSink
from shoal.kube.status import InFlight, rebuild_state, render_status
from shoal.kube.workflow_body import wait_ttl
from shoal.manifests import problems_from
from shoal_worker.offload import ValueRef
from shoal_worker.protocol import Message, PlainLine, ProgressMessage

log = logging.getLogger("shoal.runner")

LAST_WRITE_SECONDS = 3.0  # a cancelled runner's status write: within a drain's bound


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """Operator settings a runner needs."""

    jobs: JobDefaults = field(default_factory=JobDefaults)
    pending_timeout_seconds: float = 300.0
    """A pod not running after this long fails its attempt, saying why it is stuck."""
    status_interval_seconds: float = 0.25
    """Status writes are batched: at most one per interval per workflow."""
    kill_grace_seconds: float = 60.0
    """After deleting a Job, how long to wait for its pod to report an end."""
    delete_succeeded_jobs: bool = True
    """False (`--keep-succeeded-jobs`): no Job goes before its Workflow, whatever podGC says."""
    service_accounts: ServiceAccountPolicy = field(default_factory=ServiceAccountPolicy)
    """Which ServiceAccounts a node may run as (docs/security.md)."""


@dataclass(frozen=True, slots=True)
class _PodEvent:
    kind: str
    pod: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _SpecChanged:
    body: dict[str, Any]


_Event = _PodEvent | _SpecChanged | TaskFinished | ItemsLoaded | OutputsStored | GateEvent
MAX_ITEM_LISTS = 1000
"""Offloaded lists read while rebuilding after a restart (one per running fan-out)."""
MAX_PARKED_PODS = 8
"""Pods kept per attempt while its Job's uid is not known yet (its creation in flight);
more are dropped, since the attempt's own pod reports again with each status change."""


class WorkflowRunner:
    """Drives one Workflow from its current state to its end (and its TTL)."""

    def __init__(
        self,
        api: KubeApi,
        body: dict[str, Any],
        config: RunnerConfig,
        post_event: EventSink,
        log_sink: LogSink | None = None,
        attempt_sink: AttemptSink | None = None,
        dispatch_limit: asyncio.Semaphore | None = None,
        on_dispatch: Callable[[float], None] | None = None,
        on_error: Callable[[], None] | None = None,
        artifacts: ArtifactDefaults | None = None,
        on_impostor: ImpostorSink | None = None,
        memo_db: Any = None,
    ) -> None:
        self.api = api
        self.artifact_defaults = artifacts or ArtifactDefaults()
        self.body = body
        self.saved = read_status(body.get("status"))
        """The status this runner was handed: what a restart carries on from."""
        meta = body["metadata"]
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.uid: str = meta["uid"]
        self.config = config
        self.post_event = post_event
        self.log_sink = log_sink or NullLogSink()
        self.attempt_sink = attempt_sink
        self.dispatch_limit = dispatch_limit or asyncio.Semaphore(20)
        self.on_dispatch = on_dispatch
        self.on_error = on_error
        self.on_impostor = on_impostor
        self.queue: asyncio.Queue[_Event] = asyncio.Queue()
        self.attempts: dict[tuple[str, int, int], Attempt] = {}
        self.deleted = False  # the Workflow is gone: no last write (its name may be reused)
        self._open: dict[tuple[str, int, int], Attempt] = {}
        """Attempts whose outcome is not reported yet: what deadlines are scanned over,
        so a pass costs O(running), not O(every attempt of a 100,000-item fan-out)."""
        self.logs = LogFollower(api, self.namespace, self._on_line)
        self._background: set[asyncio.Task[Any]] = set()
        self._dirty = asyncio.Event()
        self._pod_gc = PodCleanup(uid=self.uid, keep_all=not config.delete_succeeded_jobs)
        self.cleanup = JobCleanup(api, self.namespace, self._pod_gc, self.attempts, self._spawn)
        self._status_path = workflows_path(self.namespace, self.name) + "/status"
        self.wf: CompiledWorkflow | None = None
        self.state: RunState | None = None
        self.store: WorkflowStore | None = None
        self._store_env: list[dict[str, Any]] = []
        self.children = ChildWorkflows(api, body, self.queue.put_nowait)
        put, spawn = self.queue.put_nowait, self._spawn
        self.flow = KubeFlow(api, self.namespace, self.name, self.uid, put, spawn, memo_db)

    # -- routed in by the operator ---------------------------------------------------

    def pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        self.queue.put_nowait(_PodEvent(kind, pod))

    def spec_changed(self, body: dict[str, Any]) -> None:
        self.queue.put_nowait(_SpecChanged(body))

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stopped: Callable[[], bool] | None = None) -> None:
        """Run until the workflow is finished and its results are recorded."""
        try:
            self.wf = self._compile()
        except InvalidWorkflow as err:
            await self._reject(err)
            return
        if self.saved.phase.finished:
            return
        refused = await self._service_accounts_refused(self.wf)
        if refused:
            await self._error("ServiceAccountNotAllowed", refused)
            return
        self.store = WorkflowStore(
            self.api, self.artifact_defaults, self.wf.spec.artifacts, self.namespace
        )
        self.wf = self.wf.replace(offload_bytes=self.store.offload_bytes)
        if self.wf.spec.pod_gc is not None:
            self._pod_gc.strategy = self.wf.spec.pod_gc.strategy.value
        self._store_env = self.store.pod_env()
        self.state = await self._rebuild(self.wf, self.saved)
        await self.flow.restore(self.wf, self.state, self.saved)  # locks held, memo verdicts
        writer = asyncio.create_task(self._status_writer())
        try:
            await self._loop(self.wf, self.state, stopped or (lambda: False))
            writer.cancel()
            self._dirty.set()
            await self._flush()
            if self.state.phase is WorkflowPhase.SUCCEEDED:
                self._spawn(self._collect_artifacts(self.wf))
            # Let the last clean-up deletions land (bounded), then stop what is left.
            if self._background:
                await asyncio.wait(list(self._background), timeout=30)
        except asyncio.CancelledError:
            if not self.deleted:
                await self._last_write(writer)
            raise
        finally:
            self.flow.close()
            tasks = [writer, *self._background, *followers(self.attempts.values())]
            for task in tasks:  # a log follower must not outlive its runner (a drain)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(
        self, wf: CompiledWorkflow, state: RunState, stopped: Callable[[], bool]
    ) -> None:
        while not stopped():
            now = time.time()
            step = advance(wf, state, now)
            for decision in step.decisions:
                self._act(wf, state, decision, now)
            if step.decisions:
                self._dirty.set()
            if state.phase.finished and not self._open:
                return
            deadline = self._next_deadline(step.wake_at)
            timeout = None if deadline is None else max(0.0, deadline - time.time())
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                # cancellation that races with a result, and the daemon would not stop.
                async with asyncio.timeout(timeout):
                    event = await self.queue.get()
            except TimeoutError:
                self._expire(time.time())
                continue
            self._handle(wf, state, event)
            while not self.queue.empty():
                self._handle(wf, state, self.queue.get_nowait())
            if deadline is not None and time.time() >= deadline:  # else none is due
                self._expire(time.time())

    def _compile(self) -> CompiledWorkflow:
        try:
            resource = Workflow.model_validate(self.body)
        except ValidationError as err:
            raise InvalidWorkflow(problems_from(err, self.body)) from None
        meta = WorkflowMeta(name=self.name, namespace=self.namespace, uid=self.uid)
        return compile_workflow(resource.spec, meta)

    async def _reject(self, err: InvalidWorkflow) -> None:
        await self._error("Invalid", "; ".join(p.describe() for p in err.problems))

    async def _error(self, reason: str, message: str) -> None:
        """The Workflow cannot run: phase Error, the message in its status and an Event."""
        self.post_event(self.body, "Warning", reason, message[:1024])
        await self.api.merge_patch(
            self._status_path,
            {
                "status": status_dict(
                    WorkflowStatus(phase=WorkflowPhase.ERROR, message=message[:4096])
                )
            },
        )

    async def _service_accounts_refused(self, wf: CompiledWorkflow) -> str:
        """Why some node may not run as its ServiceAccount ("" when all may), before any
        Job exists; reads the labels of the ServiceAccounts only a selector could allow."""
        policy = self.config.service_accounts
        found = sa_uses(wf.spec)
        labels: dict[str, dict[str, str] | None] = {}
        for name in sorted(needs_labels(policy, self.namespace, found)):
            try:
                sa = await self.api.get(service_accounts_path(self.namespace, name))
            except ApiError as err:
                if err.status not in (403, 404):
                    raise  # transient: kopf restarts the daemon, and the check runs again
                labels[name] = None
                continue
            labels[name] = (sa.get("metadata") or {}).get("labels") or {}
        return "; ".join(check_service_accounts(policy, self.namespace, found, labels).problems)

    async def _collect_artifacts(self, wf: CompiledWorkflow) -> None:
        """`gc: OnSuccess`: the run Succeeded, so its artifacts go now."""
        assert self.store is not None
        if not self.store.collects_on(phase_succeeded=True, deleted=False):
            return
        problem = await self.store.collect(workflow_prefix(wf))
        if problem is not None:
            self.post_event(self.body, "Warning", "ArtifactGCFailed", problem[:1024])

    async def _rebuild_state(
        self,
        wf: CompiledWorkflow,
        status: WorkflowStatus,
        in_flight: list[InFlight],
        stop: str | None,
    ) -> RunState:
        """rebuild_state, reading the offloaded lists that running fan-outs iterate over."""
        loaded: dict[str, list[Any] | str] = {}
        for _ in range(MAX_ITEM_LISTS):
            try:
                return rebuild_state(wf, status, in_flight, stop_requested=stop, loaded=loaded)
            except NeedItems as need:
                event = await self._load_items(LoadItems(need.node, need.reference))
                loaded[need.key] = event.items if event.items is not None else event.error or ""
        raise RuntimeError(f"{self.namespace}/{self.name}: too many offloaded lists to read")

    async def _load_items(self, decision: LoadItems) -> ItemsLoaded:
        assert self.store is not None
        store = self.store
        try:
            opened = await store.open()
        except Exception as err:
            ref = ValueRef.parse(decision.reference)
            return ItemsLoaded(ref.ref.key if ref else "", error=str(err))
        return await load_items(lambda: opened, decision)

    async def _store_outputs(self, decision: StoreOutputs) -> OutputsStored:
        assert self.store is not None
        assert self.wf is not None
        assert self.state is not None
        try:
            opened = await self.store.open()
        except Exception as err:
            return OutputsStored(decision.node, error=str(err))
        return await store_outputs(lambda: opened, self.wf, self.state, decision)

    async def _artifact_step(self, step: Awaitable[ItemsLoaded | OutputsStored]) -> None:
        self.queue.put_nowait(await step)

    async def _rebuild(self, wf: CompiledWorkflow, status: WorkflowStatus) -> RunState:
        """Adopt every Job and pod this workflow already has (after a restart, or never)."""
        selector = workflow_selector(self.uid)
        jobs = await self.api.get(jobs_path(self.namespace), labelSelector=selector)
        pods = await self.api.get(pods_path(self.namespace), labelSelector=selector)
        found = adopt(
            jobs.get("items") or [],
            pods.get("items") or [],
            namespace=self.namespace,
            uid=self.uid,
            name=self.name,
            nodes=set(wf.order),
        )
        for key, job, problem in found.impostors:
            self._impostor("job", job, key, problem)
        for key, attempt in found.attempts.items():
            attempt.capture(wf.nodes[key[0]].spec.capture_stdout)
            self.attempts[key] = self._open[key] = attempt
        state = await self._rebuild_state(wf, status, found.in_flight, None)
        apply_controls(state, self.body)  # stop, terminate, suspend, approvals
        # Older attempts of an item are history: their results were already folded in.
        for key, attempt in list(self.attempts.items()):
            task = state.nodes[key[0]].tasks.get(key[1])
            if task is None or task.attempt != key[2]:
                attempt.reported = True
                self._open.pop(key, None)
        for pod in pods.get("items") or []:
            self._observe(pod, deleted=False)
        return state

    # -- decisions -----------------------------------------------------------------------

    def _act(self, wf: CompiledWorkflow, state: RunState, decision: Decision, now: float) -> None:
        self.flow.act(state, decision)  # synchronization and memoize (kube/flow.py)
        if isinstance(decision, StartTask) and wf.nodes[decision.node].spec.workflow is not None:
            self._spawn(self.children.start(wf, decision))  # kube/children.py
        elif isinstance(decision, KillTask) and self.children.owns(decision):
            self._spawn(self.children.stop(decision, state.terminate))
        elif isinstance(decision, StartTask):
            name = job_name(self.name, self.uid, decision.node, decision.index, decision.attempt)
            attempt = dispatched(wf.nodes[decision.node], decision, name, now)
            self.attempts[attempt.key] = self._open[attempt.key] = attempt
            self._spawn(self._dispatch(wf, decision, attempt, now))
        elif isinstance(decision, LoadItems):
            self._spawn(self._artifact_step(self._load_items(decision)))
        elif isinstance(decision, StoreOutputs):
            self._spawn(self._artifact_step(self._store_outputs(decision)))
        elif isinstance(decision, KillTask):
            found = self.attempts.get((decision.node, decision.index, decision.attempt))
            # A pod seen to end already has its outcome on the way: a stale timeout
            # (right after a restart, say) must not turn its success into a failure.
            ended = found is not None and found.pod is not None and found.pod.terminated
            if found is not None and not found.reported and not ended:
                self._kill(found, decision.reason, now)
        elif isinstance(decision, FinishNode):
            if decision.phase is NodePhase.FAILED:
                self.post_event(
                    self.body,
                    "Warning",
                    "NodeFailed",
                    f"{decision.node}: {decision.message}"[:1024],
                )
            if decision.phase is NodePhase.SUCCEEDED:
                pods = state.nodes[decision.node].succeeded
                self._clean_after_write(self._pod_gc.node_succeeded(decision.node, pods))
        elif isinstance(decision, FinishWorkflow):
            kind = "Normal" if decision.phase is WorkflowPhase.SUCCEEDED else "Warning"
            message = f"workflow {decision.phase.value}" + (
                f": {decision.message}" if decision.message else ""
            )
            self.post_event(self.body, kind, decision.phase.value, message[:1024])
            succeeded = decision.phase is WorkflowPhase.SUCCEEDED
            self._clean_after_write(self._pod_gc.workflow_finished(succeeded))

    def _clean_after_write(self, selector: str | None) -> None:
        self.cleanup.after_next_write(selector)  # kube/item_jobs.py

    async def _dispatch(
        self, wf: CompiledWorkflow, task: StartTask, attempt: Attempt, decided: float
    ) -> None:
        try:
            manifest = build_job(wf, task, self.config.jobs, self._store_env, token=attempt.token)
        except ArgsTooLarge as err:
            self._report(attempt, False, str(err), retriable=False)
            return
        await self.cleanup.room(task.node, wf.nodes[task.node].parallelism or wf.parallelism)
        async with self.dispatch_limit:
            try:
                created = await self.api.create(jobs_path(self.namespace), manifest, reply="own")
                if created is None:  # dispatched before a restart: adopt its pod as it is
                    await self._adopt(attempt)
                else:
                    self._job_known(attempt, created["metadata"]["uid"])
            except ApiError as err:
                retriable = err.status >= 500 or err.status in (0, 429)
                self._report(
                    attempt, False, f"cannot create Job {attempt.job}: {err}", retriable=retriable
                )
                return
        if self.on_dispatch is not None:
            self.on_dispatch(time.time() - decided)

    async def _adopt(self, attempt: Attempt) -> None:
        """An existing Job of this attempt's name: take it if this Workflow owns it, and
        feed its pods through the normal path (their events predate us)."""
        job = await self.api.get(jobs_path(self.namespace, attempt.job))
        problem = job_problem(job, self.namespace, self.uid)
        if problem is not None:
            self._impostor("job", job, attempt.key, problem)
            self._report(
                attempt,
                False,
                f"a Job named {attempt.job} exists but is not this Workflow's: {problem}",
                retriable=False,
            )
            return
        uid = job["metadata"]["uid"]
        attempt.use_token(job_token(job))  # its pod holds that Job's token, not a new one
        self._job_known(attempt, uid)
        pods = await self.api.get(
            pods_path(self.namespace), labelSelector=f"batch.kubernetes.io/controller-uid={uid}"
        )
        for pod in pods.get("items") or []:
            self.pod_event("ADDED", pod)

    def _job_known(self, attempt: Attempt, uid: str) -> None:
        """The attempt's Job uid is known: pods seen before it are judged now."""
        attempt.job_uid = uid
        parked, attempt.parked = attempt.parked, {}
        for pod, deleted in parked.values():
            self.pod_event("DELETED" if deleted else "MODIFIED", pod)

    def _impostor(
        self, kind: str, obj: dict[str, Any], key: tuple[str, int, int], problem: str
    ) -> None:
        """Ignore an object that claims an attempt of this Workflow; count and report it."""
        if self.on_impostor is None:
            return
        meta = obj.get("metadata") or {}
        node, index, attempt = key
        self.on_impostor(
            kind,
            f"{kind} {meta.get('namespace')}/{meta.get('name')} claims Workflow "
            f"{self.namespace}/{self.name} node {node} item {index} attempt {attempt}, "
            f"but {problem}",
        )

    def _kill(self, attempt: Attempt, reason: str, now: float) -> None:
        attempt.kill_reason = reason
        attempt.kill_deadline = now + self.config.kill_grace_seconds
        self._spawn(self.api.delete(jobs_path(self.namespace, attempt.job)))

    # -- observations -------------------------------------------------------------------

    def _handle(self, wf: CompiledWorkflow, state: RunState, event: _Event) -> None:
        if isinstance(event, TaskFinished):
            if record_finished(state, event):
                self._dirty.set()
        elif isinstance(event, _PodEvent):
            self._observe(event.pod, deleted=event.kind == "DELETED")
        elif isinstance(event, _SpecChanged):
            apply_controls(state, event.body)
        elif isinstance(event, ItemsLoaded):
            record_items_loaded(state, event)
        elif isinstance(event, OutputsStored):
            record_outputs_stored(state, event)
        else:
            record_gate_event(state, event)
            self._dirty.set()  # a lock's holders changed: the status says who they are

    def _observe(self, pod: dict[str, Any], *, deleted: bool) -> None:
        # Labels only say which attempt a pod claims to be; its namespace and its
        # controller (the Job created for that attempt) say whether it is (ownership.py).
        view = read_pod(pod)
        if view is None or view.workflow_uid != self.uid:
            return
        if not in_namespace(pod, self.namespace):
            self._impostor("pod", pod, view.key, pod_problem(pod, self.namespace, "") or "")
            return
        attempt = self.attempts.get(view.key)
        if attempt is None or attempt.reported:
            return
        if attempt.job_uid is None:  # its Job's creation is in flight
            uid = str((pod.get("metadata") or {}).get("uid") or "")
            if uid in attempt.parked or len(attempt.parked) < MAX_PARKED_PODS:
                attempt.parked[uid] = (pod, deleted)
            return
        problem = pod_problem(pod, self.namespace, attempt.job_uid)
        if problem is not None:
            self._impostor("pod", pod, view.key, problem)
            return
        attempt.observe(view)
        if attempt.pod is None:
            return
        if attempt.pod.running:
            self.logs.start(attempt)
        if (attempt.pod.terminated or deleted) and not attempt.completing:
            attempt.completing = True
            self._spawn(self._complete(attempt))

    async def _complete(self, attempt: Attempt) -> None:
        """The pod ended (or vanished): gather its whole output, then report the outcome."""
        await self.logs.drain(attempt)
        assert self.wf is not None
        worker = self.wf.nodes[attempt.node].spec.job is not None
        self._deliver(attempt, outcome_event(attempt, time.time(), worker=worker))

    def _report(
        self,
        attempt: Attempt,
        succeeded: bool,
        message: str,
        *,
        retriable: bool,
        infrastructure: bool = False,
    ) -> None:
        event = TaskFinished(
            attempt.node,
            attempt.index,
            attempt.attempt,
            succeeded,
            time.time(),
            message=message,
            retriable=retriable,
            infrastructure=infrastructure,
        )
        self._deliver(attempt, event)

    def _deliver(self, attempt: Attempt, event: TaskFinished) -> None:
        if attempt.reported:
            return
        attempt.reported = True
        attempt.parked = {}
        self._open.pop(attempt.key, None)
        self.cleanup.ended(attempt, event.succeeded)
        self.logs.stop(attempt)
        self.queue.put_nowait(event)
        if self.attempt_sink is not None:
            pod = attempt.pod
            started = pod.started_at if pod is not None and pod.started_at else attempt.created_at
            self.attempt_sink.record(self.uid, event, started, self._retry_round())

    def _retry_round(self) -> int:
        """The `shoal retry` round this run is in (attempts number from 1 in each)."""
        return self.saved.retries or 0

    def _on_line(self, attempt: Attempt, msg: Message, line: str) -> None:
        if isinstance(msg, ProgressMessage) and self.state is not None:
            record_progress(self.state, attempt.node, msg.percent)
            self._dirty.set()
        # Every line, protocol ones included, as written but without the attempt's token
        # (`line` is redacted): `shoal logs` shows an archived log as it shows a live one.
        text = msg.text if isinstance(msg, PlainLine) else line.rstrip("\r\n")
        self.log_sink.write(
            self.uid,
            attempt.node,
            attempt.index,
            attempt.attempt,
            text,
            retry=self._retry_round(),
            line_no=attempt.lines_seen - 1,  # this line's number in the pod's log
        )

    # -- deadlines -------------------------------------------------------------------------

    def _next_deadline(self, wake_at: float | None) -> float | None:
        return next_deadline(self._open.values(), wake_at, self.config.pending_timeout_seconds)

    def _expire(self, now: float) -> None:
        """Every wait has a deadline: pods that never start, kills that never land."""
        limit = self.config.pending_timeout_seconds
        for attempt in list(self._open.values()):
            due = deadline_of(attempt, limit)
            if due is None or now < due:
                continue
            if attempt.kill_deadline is not None:
                message = f"{attempt.kill_reason} (pod did not report its end)"
                self._report(attempt, False, message, retriable=True)
                continue
            verdict = pending_verdict(attempt.pod, attempt.job, limit)
            self._kill(attempt, verdict.message, now)
            self._report(
                attempt,
                False,
                verdict.message,
                retriable=verdict.infrastructure,
                infrastructure=verdict.infrastructure,
            )

    # -- status ------------------------------------------------------------------------------

    async def _status_writer(self) -> None:
        while True:
            await self._dirty.wait()
            await self._flush()
            await asyncio.sleep(self.config.status_interval_seconds)

    async def _last_write(self, writer: asyncio.Task[None]) -> None:
        """Cancelled (shard drained, operator stopping): record what was decided, so the
        next runner adopts its Jobs; the write guard refuses it if the shard is lost."""
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)  # a write in flight ends
        self._dirty.set()
        try:
            async with asyncio.timeout(LAST_WRITE_SECONDS):
                await self._flush()
        except Exception as err:  # timed out, or the client closed: the cancel goes on
            log.warning("last status write for %s/%s: %r", self.namespace, self.name, err)

    async def _flush(self) -> None:
        if not self._dirty.is_set() or self.wf is None or self.state is None:
            return
        self._dirty.clear()
        status, due = render_status(self.wf, self.state), self.cleanup.take()
        try:
            await self.api.merge_patch(self._status_path, {"status": status}, reply="ignored")
        except ApiError as err:
            log.warning("status write for %s/%s failed: %s", self.namespace, self.name, err)
            self._dirty.set()
            self.cleanup.put_back(due)
            return
        self.cleanup.written(status, due)  # Jobs whose results this write recorded

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            if self.on_error is not None:
                self.on_error()
            log.error(
                "%s/%s: background task failed",
                self.namespace,
                self.name,
                exc_info=task.exception(),
            )


__all__ = ["PodView", "RunnerConfig", "WorkflowRunner", "wait_ttl"]
