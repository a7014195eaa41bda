"""Following a pod's log: a stream that ends while the container runs is resumed, every
line reaches the runner once, and a stream that ends with its container costs one request.

The API is a scripted fake; pods are shaped like the API server's (pod_fixtures.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shoal.kube import attempts as attempts_module
from shoal.kube.api import ApiError
from shoal.kube.attempts import Attempt, LogFollower
from shoal.kube.pods import PodView, read_pod
from shoal_worker.protocol import Message
from tests.unit.pod_fixtures import JOB, completed, running

LINES = [f"line {n}" for n in range(500)]


def view(pod: dict[str, Any]) -> PodView:
    result = read_pod(pod)
    assert result is not None
    return result


def finished_in(seconds: float) -> PodView:
    """The completed pod, its container finished `seconds` from now."""
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return dataclasses.replace(view(completed()), finished_at=at.timestamp())


class ScriptedLog:
    """The pod's log API. Each follow request gets the next script entry: how many lines
    it has by then, and what happens when it ends (a callback, e.g. the container ends)."""

    def __init__(self, script: list[tuple[int, Callable[[], None] | None]]) -> None:
        self.script = script
        self.requests = 0
        self.params: list[dict[str, Any]] = []
        self.asked = asyncio.Event()

    async def lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        available, at_end = self.script[min(self.requests, len(self.script) - 1)]
        self.requests += 1
        self.params.append({**params, "pool": "streams"})
        self.asked.set()
        for line in LINES[:available]:
            yield line
        if at_end is not None:
            at_end()

    async def short_lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        async for line in self.lines(path, **params):
            yield line
        self.params[-1]["pool"] = "short"


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attempts_module, "END_GRACE_SECONDS", 0.05)
    monkeypatch.setattr(attempts_module, "RESUME_BACKOFF_SECONDS", (0.01, 0.05))
    monkeypatch.setattr(attempts_module, "FOLLOW_AFTER_SECONDS", 0.0)  # tests below: delays


def follower(api: ScriptedLog) -> tuple[LogFollower, Attempt, list[str]]:
    fed: list[str] = []

    def on_line(attempt: Attempt, msg: Message, line: str) -> None:
        fed.append(line)

    attempt = Attempt("integration", 0, 1, JOB, float(0))
    attempt.observe(view(running()))
    return LogFollower(api, "team-a", on_line), attempt, fed  # type: ignore[arg-type]


async def test_a_stream_that_ends_with_its_container_is_read_once() -> None:
    api = ScriptedLog([])
    log, attempt, fed = follower(api)
    api.script = [(500, lambda: attempt.observe(finished_in(-1)))]
    log.start(attempt)
    assert attempt.follower is not None
    await attempt.follower
    assert fed == LINES
    assert (api.requests, attempt.resumed, attempt.stream_ok) == (1, 0, True)


async def test_a_stream_cut_while_the_container_runs_is_resumed_without_repeats() -> None:
    """140 of 500 lines, then a clean end while the pod still runs: before, the log was
    taken as complete and 360 lines were lost."""
    api = ScriptedLog([])
    log, attempt, fed = follower(api)
    api.script = [(140, None), (300, None), (500, lambda: attempt.observe(finished_in(-1)))]
    log.start(attempt)
    assert attempt.follower is not None
    await attempt.follower
    assert fed == LINES
    assert attempt.lines_seen == 500
    assert (api.requests, attempt.resumed, attempt.stream_ok) == (3, 2, True)


async def test_a_stream_cut_just_before_the_container_ends_is_read_once_more() -> None:
    """The pod reports its end right after the stream was cut, but its container finished
    seconds after the cut: the lines of those seconds are read, not lost."""
    api = ScriptedLog([])
    log, attempt, fed = follower(api)
    api.script = [(200, lambda: attempt.observe(finished_in(10))), (500, None)]
    log.start(attempt)
    assert attempt.follower is not None
    await attempt.follower
    assert fed == LINES
    assert (api.requests, attempt.stream_ok) == (2, True)


async def test_a_pod_that_ends_before_the_follow_delay_is_read_once_after_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Most fan-out items end within a second: one request, no stream held while it ran."""
    monkeypatch.setattr(attempts_module, "FOLLOW_AFTER_SECONDS", 60.0)
    api = ScriptedLog([(500, None)])
    log, attempt, fed = follower(api)
    log.start(attempt)
    assert attempt.follower is None  # not streamed yet
    attempt.observe(finished_in(-1))
    await asyncio.wait_for(log.drain(attempt), 10)
    assert fed == LINES
    assert (api.requests, attempt.stream_ok) == (1, True)
    assert "follow" not in api.params[0]  # a plain read of the finished log
    assert api.params[0]["pool"] == "short"  # the short requests' kept-alive connections
    assert (attempt.follower, attempt.follow_timer) == (None, None)


async def test_a_pod_running_past_the_follow_delay_is_streamed_while_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attempts_module, "FOLLOW_AFTER_SECONDS", 0.05)
    api = ScriptedLog([])
    log, attempt, fed = follower(api)
    api.script = [(500, lambda: attempt.observe(finished_in(-1)))]
    log.start(attempt)
    await asyncio.wait_for(api.asked.wait(), 10)  # the follow request, while it runs
    assert attempt.follower is not None
    await asyncio.wait_for(attempt.follower, 10)
    assert api.params[0]["follow"] == "true"
    assert api.params[0]["pool"] == "streams"
    assert fed == LINES
    assert (api.requests, attempt.stream_ok) == (1, True)


async def test_a_reported_attempt_never_starts_following(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attempts_module, "FOLLOW_AFTER_SECONDS", 60.0)
    log, attempt, _ = follower(ScriptedLog([(500, None)]))
    log.start(attempt)
    pending = attempt.follow_timer
    assert pending is not None
    attempt.reported = True  # as the runner marks it, then stops its log
    log.stop(attempt)
    assert pending.cancelled()
    assert attempt.follow_timer is None
    log.start(attempt)  # a late pod event of a reported attempt changes nothing
    assert (attempt.follower, attempt.follow_timer) == (None, None)


class BrokenStreams(ScriptedLog):
    """Every line request breaks after `cut` lines; the whole log is there in one read."""

    def __init__(self, cut: int) -> None:
        super().__init__([(cut, None)])
        self.cut = cut
        self.text_params: list[dict[str, Any]] = []

    async def short_lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        async for line in self.lines(path, **params):
            yield line
        raise ApiError(500, "InternalError", "stream broke")

    async def text(self, path: str, **params: Any) -> str:
        self.text_params.append(params)
        return "".join(f"{line}\n" for line in LINES)


async def test_the_last_resort_read_is_bounded_and_feeds_only_unseen_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A finished pod whose log read broke is read once more in one request: the API
    server is asked for a bounded head (a pod that wrote gigabytes cannot fill the
    operator's memory), and lines already fed are not fed twice."""
    monkeypatch.setattr(attempts_module, "FOLLOW_AFTER_SECONDS", 60.0)
    api = BrokenStreams(cut=120)
    log, attempt, fed = follower(api)
    log.start(attempt)
    attempt.observe(finished_in(-1))
    await asyncio.wait_for(log.drain(attempt), 10)
    assert api.text_params == [{"container": "main", "limitBytes": attempts_module.LAST_READ_BYTES}]
    assert fed == LINES
