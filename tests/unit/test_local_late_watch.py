"""A child's exit learnt from its pipes' end, a pidfd only for children that live on
(local/spawn.py, local/late_watch.py): short children cost no pidfd, yet an exit is still
seen while a grandchild holds the pipes, and a child that closes its outputs early is
still waited for, with its own exit code."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from shoal.local import spawn as spawn_module
from shoal.local.child_poll import held
from shoal.local.late_watch import LATE_WATCH_SECONDS
from shoal.local.spawn import Child, spawn


def count_pidfds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    opened: list[int] = []
    real = os.pidfd_open

    def counted(pid: int, flags: int = 0) -> int:
        opened.append(pid)
        return real(pid, flags)

    monkeypatch.setattr(spawn_module.os, "pidfd_open", counted)
    return opened


def started(argv: list[str], cwd: Path) -> tuple[Child, asyncio.Event]:
    """The child and an event set at each `on_change` (exit known, pipes ended)."""
    changed = asyncio.Event()
    return spawn(argv, dict(os.environ), cwd, bytes, bytes, changed.set), changed


async def settled(child: Child, done: asyncio.Event, bound: float) -> int:
    """The exit code once the child is reaped and its pipes ended, as the executor sees."""
    try:
        async with asyncio.timeout(bound):
            while not (child.returncode is not None and child.drained.done()):
                done.clear()  # no await since the check: no change is missed
                await done.wait()
    finally:
        child.close()
    assert child.returncode is not None
    return child.returncode


def test_a_child_reaped_at_its_pipes_end_costs_no_pidfd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each child exits at once; a grandchild holds the pipes a moment longer, so the child
    is certainly gone when they end (the sweep is put off, so it cannot interfere)."""
    from shoal.local import late_watch

    monkeypatch.setattr(late_watch, "LATE_WATCH_SECONDS", 60.0)
    opened = count_pidfds(monkeypatch)
    before = set(os.listdir("/proc/self/fd"))

    async def one(code: int) -> int:
        child, changed = started(["sh", "-c", f"sleep 0.2 & exit {code}"], tmp_path)
        return await settled(child, changed, 30)

    async def scenario() -> list[int]:
        with held():
            return list(await asyncio.gather(*(one(code) for code in range(5))))

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]
    assert opened == []
    assert set(os.listdir("/proc/self/fd")) == before


def test_an_exit_is_seen_while_a_grandchild_holds_the_pipes(tmp_path: Path) -> None:
    """The executor's drain timer starts from this exit (test_local_runs covers the run)."""

    async def scenario() -> tuple[int, bool, float]:
        with held():
            child, changed = started(["sh", "-c", "sleep 30 & exit 4"], tmp_path)
            loop = asyncio.get_running_loop()
            start = loop.time()
            try:
                await asyncio.wait_for(changed.wait(), 10 * LATE_WATCH_SECONDS + 10)
                return child.returncode or 0, child.drained.done(), loop.time() - start
            finally:
                child.signal(signal.SIGKILL, group_outlives=True)
                child.close()

    code, drained, waited = asyncio.run(scenario())
    assert (code, drained) == (4, False)
    assert waited < 2 * LATE_WATCH_SECONDS + 5


def test_a_child_that_closes_its_outputs_is_still_waited_for(tmp_path: Path) -> None:
    script = "exec >&- 2>&-; sleep 0.5; exit 6"

    async def scenario() -> int:
        with held():
            child, changed = started(["sh", "-c", script], tmp_path)
            return await settled(child, changed, 30)

    assert asyncio.run(scenario()) == 6


def test_asking_for_the_exit_watches_it_at_once(tmp_path: Path) -> None:
    """A kill waits on `exited` within its grace period, pipes open or not."""

    async def scenario() -> int:
        with held():
            child, _ = started(["sleep", "30"], tmp_path)
            try:
                exited = child.exited
                child.signal(signal.SIGTERM)
                return await asyncio.wait_for(exited, 30)
            finally:
                child.close()

    assert asyncio.run(scenario()) == -signal.SIGTERM


def test_a_pipes_last_chunk_is_handed_over_before_the_child_is_settled(tmp_path: Path) -> None:
    """The exit is known first (a grandchild holds the pipes and writes an unterminated
    last line): the executor settles the attempt when both are done, so each pipe's end
    (`b""`, which flushes a last line without a newline) must have arrived by then."""

    async def scenario() -> list[bytes]:
        out: list[bytes] = []
        seen_at_settle: list[bytes] = []
        done = asyncio.Event()

        def changed() -> None:
            if child.returncode is not None and child.drained.done():
                seen_at_settle.extend(out)
                done.set()

        with held():
            script = "(sleep 0.3; printf tail) & exit 0"
            child = spawn(
                ["sh", "-c", script], dict(os.environ), tmp_path, out.append, bytes, changed
            )
            try:
                assert await asyncio.wait_for(child.exited, 30) == 0
                await asyncio.wait_for(done.wait(), 30)
            finally:
                child.close()
        return seen_at_settle

    seen = asyncio.run(scenario())
    assert b"".join(seen) == b"tail"
    assert seen[-1] == b""
