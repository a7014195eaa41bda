"""The test cluster's node agent (hack/nodeagent/logs.py): a log follower never misses a
line written while it was sending what it had read. It used to take the writer's "next
change" only when its waiting task first ran, after such a write, and then waited for a
write that never came (a CI run's `wait_for_log_line` timed out on a pod that had
printed its line)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hack.nodeagent.logs import LogOptions, LogWriter, read_logs


def test_a_line_written_while_the_follower_sends_is_delivered(tmp_path: Path) -> None:
    async def scenario() -> list[bytes]:
        writer = LogWriter(tmp_path / "0.log")
        writer.write("stdout", b"up\n")
        follower = read_logs(writer.path, writer, LogOptions(follow=True))
        first = await follower.__anext__()  # the follower is now suspended, sending it
        writer.write("stdout", b"next\n")  # ... and this write happens meanwhile
        second = await asyncio.wait_for(follower.__anext__(), 10)
        writer.close()
        rest = [chunk async for chunk in follower]
        return [first, second, *rest]

    assert asyncio.run(scenario()) == [b"up\n", b"next\n"]


def test_following_ends_once_the_run_is_closed_and_read(tmp_path: Path) -> None:
    async def scenario() -> list[bytes]:
        writer = LogWriter(tmp_path / "0.log")
        writer.write("stdout", b"a\n")
        writer.close()
        follower = read_logs(writer.path, writer, LogOptions(follow=True))
        return await asyncio.wait_for(_all(follower), 10)

    assert asyncio.run(scenario()) == [b"a\n"]


async def _all(chunks: object) -> list[bytes]:
    return [chunk async for chunk in chunks]  # type: ignore[attr-defined]
