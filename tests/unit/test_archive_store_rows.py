"""The rows `archive.store.save_run` writes, from the typed status (no database needed:
tests/cluster/test_archive.py reads them back from PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from shoal.archive.store import save_run


class RecordingConnection:
    """Takes the statements an asyncpg connection would run."""

    def __init__(self) -> None:
        self.runs: list[tuple[Any, ...]] = []
        self.nodes: list[tuple[Any, ...]] = []

    async def execute(self, _query: str, *args: Any) -> None:
        self.runs.append(args)

    async def executemany(self, _query: str, rows: list[tuple[Any, ...]]) -> None:
        self.nodes.extend(rows)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


BODY = {"metadata": {"uid": "u1", "namespace": "ns", "name": "wf"}, "spec": {"nodes": []}}


def saved(status: dict[str, Any]) -> RecordingConnection:
    conn = RecordingConnection()
    asyncio.run(save_run(conn, BODY, status))
    return conn


def test_a_rendered_status_becomes_one_run_row_and_one_row_per_node() -> None:
    status = {
        "phase": "Failed",
        "progress": "1/2",
        "message": "node b failed",
        "startedAt": "2026-03-01T10:00:01Z",
        "finishedAt": "2026-03-01T10:00:09.500000Z",
        "nodes": {
            "a": {"phase": "Succeeded", "attempts": 1, "exitCode": 0, "outputs": {"n": 3}},
            "b": {"phase": "Failed", "attempts": 2, "items": {"total": 2, "failed": 1}},
        },
    }
    conn = saved(status)
    (run,) = conn.runs
    assert run[6:9] == ("Failed", "1/2", "node b failed")
    assert run[11:13] == (
        datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 0, 9, 500000, tzinfo=UTC),
    )
    assert json.loads(run[13]) == status  # the status column is the object as stored
    a, b = conn.nodes
    assert a[1:6] == ("a", "Succeeded", 1, 0, None)
    assert json.loads(a[6]) == {"n": 3}
    assert b[1:4] == ("b", "Failed", 2)
    assert json.loads(b[7]) == {"total": 2, "failed": 1}  # the counts as the status held them


def test_a_hand_edited_status_is_archived_without_what_does_not_fit() -> None:
    status = {
        "phase": "Exploded",
        "nodes": {"a": {"phase": "Succeeded", "attempts": "many"}, "b": ["not", "an", "object"]},
    }
    conn = saved(status)
    assert conn.runs[0][6] == "Pending"
    assert [row[1:4] for row in conn.nodes] == [("a", "Succeeded", 0)]
    assert json.loads(conn.runs[0][13]) == status
