"""Following one attempt's pod: its status as watched, its log as streamed, its outcome.

Results reach the operator two ways — the stdout protocol and the pod's termination
message — so a broken log stream does not lose a result: when the stream ended badly or
never ran, the complete log of the terminated pod is read once more, and the termination
message fills in whatever the log cannot.

A pod's log is followed once it has run `FOLLOW_AFTER_SECONDS`; one that ends sooner (most
fan-out items) is read whole after its end, in one short request over a kept-alive
connection. Following every pod from its start held a stream, a connection and often a
new TLS handshake per item: the largest share of the operator's CPU per item.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from shoal.core.collector import Outcome, StreamCollector
from shoal.core.compiled import CompiledNode
from shoal.core.decisions import StartTask
from shoal.core.state import TaskFinished, bounded_finish
from shoal.kube.api import ApiError, KubeApi, pods_path
from shoal.kube.jobs import CONTAINER
from shoal.kube.pods import PodView, end_reason, is_infrastructure_failure
from shoal_worker.protocol import Message, new_token

WORKER_USAGE_EXIT = 2
"""shoal-worker's exit code for usage errors (unknown job, bad args): retrying cannot help."""
LOG_DRAIN_SECONDS = 5.0
"""After a pod terminated, its log stream gets this long to end before it is re-read."""
END_GRACE_SECONDS = 2.0
"""A log stream that ends is the container's end if the pod's status says so within this
long; otherwise the stream ended early (an API server or kubelet cut it) and is resumed."""
RESUME_BACKOFF_SECONDS = (0.5, 5.0)
"""First and largest wait between resumptions of a stream that keeps ending early."""
FOLLOW_AFTER_SECONDS = 1.0
"""A running pod's log is streamed once the pod has been seen running this long (0: at
once); a pod that ends sooner has its log read in one request after its end."""
WHOLE_LOG_SECONDS = 30.0
"""Longest a finished pod's whole log may take to read (then the termination message)."""
LAST_READ_BYTES = 16 * 1024 * 1024
"""The last-resort read of a finished pod's log (its stream broke) asks the API server for
at most this much (`limitBytes`): a pod that wrote more cannot fill the operator's memory;
what its log's head lacks, the termination message may still give."""

OnLine = Callable[["Attempt", Message, str], None]
"""Called with each log line as parsed and as written, minus the attempt's token (the
archive keeps it so)."""


@dataclass(slots=True)
class Attempt:
    """One attempt of one item: its Job, its pod as last seen, and what its log said."""

    node: str
    index: int
    attempt: int
    job: str
    created_at: float
    token: str = ""
    """The attempt's protocol token, as in its Job; empty: no line counts as a message."""
    capture_stdout: bool = False
    """The node's `captureStdout`: the pod log's plain lines become `outputs.result`."""
    job_uid: str | None = None
    """The uid the API server gave the Job the operator created (or adopted, owned by
    this Workflow): the only controller a pod of this attempt may have."""
    parked: dict[str, tuple[dict[str, Any], bool]] = field(default_factory=dict)
    """Pod events seen before `job_uid` was known (by pod uid; bounded), checked once it is."""
    pod: PodView | None = None
    collector: StreamCollector = field(init=False)
    lines_seen: int = 0
    follower: asyncio.Task[None] | None = None
    follow_timer: asyncio.TimerHandle | None = None
    """The follower's start, pending until the pod has run `FOLLOW_AFTER_SECONDS`."""
    stream_ok: bool = False
    completing: bool = False
    reported: bool = False
    kill_reason: str | None = None
    kill_deadline: float | None = None
    resumed: int = 0
    """How often the log stream ended while the pod ran and was opened again."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a pod view says the container terminated."""

    def __post_init__(self) -> None:
        self.collector = StreamCollector(self.token, capture_stdout=self.capture_stdout)

    def capture(self, capture_stdout: bool) -> None:
        """Apply the node's `captureStdout` to an attempt adopted after a restart (before
        its log is read: adoption knows Jobs, not node specs)."""
        if capture_stdout != self.capture_stdout:
            self.capture_stdout = capture_stdout
            self.collector = StreamCollector(self.token, capture_stdout=capture_stdout)

    def use_token(self, token: str) -> None:
        """Take the token of the Job that really runs this attempt (one created earlier)."""
        if token != self.token:
            self.token = token
            self.collector.token = token

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.node, self.index, self.attempt)

    def observe(self, view: PodView) -> None:
        """Keep the most advanced view: pod events may arrive out of order after a list."""
        if self.pod is None or _rank(view) >= _rank(self.pod):
            self.pod = view
            if view.terminated:
                self.ended.set()


def dispatched(node: CompiledNode, start: StartTask, job: str, now: float) -> Attempt:
    """The attempt ``start`` asks for, with a fresh token and its node's `captureStdout`."""
    return Attempt(
        start.node,
        start.index,
        start.attempt,
        job,
        now,
        token=new_token(),
        capture_stdout=node.spec.capture_stdout,
    )


def followers(attempts: Iterable[Attempt]) -> list[asyncio.Task[None]]:
    """The log-following tasks of these attempts still running. Followers not started yet
    never will be: their runner is ending."""
    out = []
    for attempt in attempts:
        if attempt.follow_timer is not None:
            attempt.follow_timer.cancel()
            attempt.follow_timer = None
        if attempt.follower is not None and not attempt.follower.done():
            out.append(attempt.follower)
    return out


def _ended_with_the_stream(attempt: Attempt, stream_end: float) -> bool:
    """Did the container end when its log stream did (so the stream is the whole log)?

    The container's finish time has a precision of one second, hence the margin.
    """
    finished = attempt.pod.finished_at if attempt.pod is not None else None
    return finished is None or finished <= stream_end + 1.0


def _rank(view: PodView) -> int:
    return 3 if view.terminated else 2 if view.running else 1


class LogFollower:
    """Streams pod logs into attempts' collectors (one asyncio task per running pod)."""

    def __init__(self, api: KubeApi, namespace: str, on_line: OnLine) -> None:
        self.api = api
        self.namespace = namespace
        self.on_line = on_line

    def start(self, attempt: Attempt) -> None:
        """The pod runs: follow its log from `FOLLOW_AFTER_SECONDS` on, unless it ended."""
        if attempt.follower is not None or attempt.follow_timer is not None or attempt.reported:
            return
        if FOLLOW_AFTER_SECONDS <= 0:
            self._start_now(attempt)
        elif not attempt.ended.is_set():
            loop = asyncio.get_running_loop()
            attempt.follow_timer = loop.call_later(FOLLOW_AFTER_SECONDS, self._start_now, attempt)

    def _start_now(self, attempt: Attempt) -> None:
        attempt.follow_timer = None
        if attempt.follower is None and attempt.pod is not None and not attempt.reported:
            attempt.follower = asyncio.create_task(self._follow(attempt, attempt.pod.name))

    def stop(self, attempt: Attempt) -> None:
        """The attempt is reported: no more of its log is read."""
        if attempt.follow_timer is not None:
            attempt.follow_timer.cancel()
            attempt.follow_timer = None
        if attempt.follower is not None:
            attempt.follower.cancel()

    async def _follow(self, attempt: Attempt, pod: str) -> None:
        """Follow the log to the container's end, resuming a stream that ends before it.

        A follow stream can end cleanly while the container still runs (an API server or
        kubelet timeout, a proxy): that is not the end of the log. Each resumption reads
        the log again and feeds only the lines past those already seen, so every line is
        fed once. The follower lives no longer than its attempt (cancelled when reported).
        """
        path = pods_path(self.namespace, pod) + "/log"
        backoff, max_backoff = RESUME_BACKOFF_SECONDS
        while True:
            already = attempt.lines_seen
            number = 0
            after_the_end = attempt.ended.is_set()  # then this read is the whole log
            try:
                async for line in self.api.lines(path, follow="true", container=CONTAINER):
                    number += 1
                    if number > already:
                        self._feed(attempt, line)
            except (ApiError, httpx.HTTPError):
                attempt.stream_ok = False
                return
            stream_end = time.time()
            if not attempt.ended.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(END_GRACE_SECONDS):
                        await attempt.ended.wait()
            if after_the_end or (
                attempt.ended.is_set() and _ended_with_the_stream(attempt, stream_end)
            ):
                attempt.stream_ok = True
                return
            # Cut short: the container ran on after its stream ended. Read it again.
            attempt.resumed += 1
            if not attempt.ended.is_set():  # back off, but read at once when it ends
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await attempt.ended.wait()
                backoff = min(backoff * 2, max_backoff)

    async def _read_whole(self, attempt: Attempt, pod: str) -> None:
        """A finished container's log in one request, on the short requests' pool (its
        answer ends by itself); bounded per line like a stream, and in time."""
        path = pods_path(self.namespace, pod) + "/log"
        number = 0
        try:
            async with asyncio.timeout(WHOLE_LOG_SECONDS):
                async for line in self.api.short_lines(path, container=CONTAINER):
                    number += 1
                    if number > attempt.lines_seen:
                        self._feed(attempt, line)
        except (ApiError, httpx.HTTPError, TimeoutError):
            return  # read again below, then the termination message
        attempt.stream_ok = True

    def _feed(self, attempt: Attempt, line: str) -> None:
        attempt.lines_seen += 1
        self.on_line(attempt, attempt.collector.feed(line), attempt.collector.redact(line))

    async def drain(self, attempt: Attempt) -> None:
        """Make sure the collector holds the whole log of a terminated pod."""
        if attempt.follow_timer is not None:  # it ended before its log was followed
            attempt.follow_timer.cancel()
            attempt.follow_timer = None
        if attempt.follower is None and attempt.ended.is_set() and attempt.pod is not None:
            await self._read_whole(attempt, attempt.pod.name)
        if attempt.follower is not None:
            try:
                await asyncio.wait_for(asyncio.shield(attempt.follower), LOG_DRAIN_SECONDS)
            except TimeoutError:
                attempt.follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await attempt.follower
                attempt.stream_ok = False
        if attempt.stream_ok or attempt.pod is None:
            return
        # The stream broke or never ran: read the terminated pod's complete log, feeding
        # only the lines not seen yet so nothing is reported twice.
        path = pods_path(self.namespace, attempt.pod.name) + "/log"
        try:
            async with asyncio.timeout(WHOLE_LOG_SECONDS):
                text = await self.api.text(path, container=CONTAINER, limitBytes=LAST_READ_BYTES)
        except (ApiError, httpx.HTTPError, TimeoutError):
            return  # the termination message is the last resort
        for number, line in enumerate(text.splitlines()):
            if number >= attempt.lines_seen:
                self._feed(attempt, line)


def outcome_event(attempt: Attempt, now: float, *, worker: bool) -> TaskFinished:
    """The planner's view of how the attempt ended (`worker`: a `job` node's shoal-worker)."""
    pod = attempt.pod
    exit_code = pod.exit_code if pod is not None else None
    termination = pod.termination_message if pod is not None else None
    outcome: Outcome = attempt.collector.finish(
        exit_code, termination, killed_reason=attempt.kill_reason
    )
    succeeded = outcome.succeeded and outcome.outputs_complete
    message = outcome.message
    infrastructure = False
    if pod is not None and not succeeded and attempt.kill_reason is None:
        reason = end_reason(pod)
        if reason is not None:
            message = f"{reason}; {message}" if message else reason
        infrastructure = is_infrastructure_failure(pod) or (
            pod.deleted and pod.reason != "OOMKilled"
        )
    if not outcome.outputs_complete:
        message = f"outputs lost: {', '.join(outcome.missing_outputs)}; {message}"
    finished = pod.finished_at if pod is not None and pod.finished_at else now
    return bounded_finish(
        TaskFinished(
            node=attempt.node,
            index=attempt.index,
            attempt=attempt.attempt,
            succeeded=succeeded,
            at=finished,
            exit_code=exit_code,
            outputs=outcome.outputs if succeeded else {},
            message=message,
            retriable=not (worker and exit_code == WORKER_USAGE_EXIT),
            infrastructure=infrastructure,
        )
    )
