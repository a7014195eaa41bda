"""Reading the archive back: run history and the logs of pods that are gone.

A small async API for the CLI (`shoal history`; `shoal get`, `shoal logs` and
`shoal resubmit` when the Workflow or its pods no longer exist; `shoal get --node` for
the attempts of every item) and later the REST API. It takes an asyncpg pool or
connection and returns plain dataclasses, so callers need no SQL and no asyncpg types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shoal.archive.db import using
from shoal.core import jsonbounds


@dataclass(frozen=True, slots=True)
class RunSummary:
    uid: str
    namespace: str
    name: str
    phase: str
    progress: str | None
    message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeRecord:
    node: str
    phase: str
    attempts: int
    exit_code: int | None
    message: str | None
    outputs: dict[str, Any] | None
    items: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunDetail:
    run: RunSummary
    spec: dict[str, Any]
    parameters: dict[str, Any]
    outputs: dict[str, Any] | None
    nodes: list[NodeRecord]
    status: dict[str, Any] | None = None
    """The status object as the operator last wrote it (None for runs archived before
    schema version 2: then only the columns above are known)."""
    updated_at: datetime | None = None
    """When the archive last recorded this run."""


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of one item, as it ended."""

    node: str
    index: int
    attempt: int
    phase: str
    exit_code: int | None
    message: str | None
    outputs: dict[str, Any] | None
    outputs_omitted: str | None
    started_at: datetime | None
    finished_at: datetime | None
    retry: int = 0
    """The workflow's `shoal retry` round the attempt ran in (attempts restart at 1)."""


@dataclass(frozen=True, slots=True)
class LogLine:
    id: int
    node: str
    index: int
    attempt: int
    at: datetime
    line: str


_RUN_COLUMNS = (
    "uid, namespace, name, phase, progress, message, created_at, started_at, finished_at, labels"
)


def _load(value: Any) -> Any:
    return jsonbounds.loads(value) if isinstance(value, str) else value


def _summary(row: Any) -> RunSummary:
    return RunSummary(
        uid=row["uid"],
        namespace=row["namespace"],
        name=row["name"],
        phase=row["phase"],
        progress=row["progress"],
        message=row["message"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        labels=_load(row["labels"]) or {},
    )


async def list_runs(
    db: Any,
    *,
    namespace: str | None = None,
    phase: str | None = None,
    since: datetime | None = None,
    name: str | None = None,
    limit: int = 100,
) -> list[RunSummary]:
    """Runs, newest first; each filter is ignored when None."""
    async with using(db) as conn:
        rows = await conn.fetch(
            f"SELECT {_RUN_COLUMNS} FROM shoal_workflows"
            " WHERE ($1::text IS NULL OR namespace = $1)"
            " AND ($2::text IS NULL OR phase = $2)"
            " AND ($3::timestamptz IS NULL OR created_at >= $3)"
            " AND ($4::text IS NULL OR name = $4)"
            " ORDER BY created_at DESC, uid LIMIT $5",
            namespace,
            phase,
            since,
            name,
            limit,
        )
    return [_summary(r) for r in rows]


async def find_run(db: Any, namespace: str, name: str) -> RunSummary | None:
    """The latest run called `name` (names are reused once a Workflow is deleted)."""
    runs = await list_runs(db, namespace=namespace, name=name, limit=1)
    return runs[0] if runs else None


async def get_run(db: Any, uid: str) -> RunDetail | None:
    """One run with its nodes (in the order they started), or None."""
    async with using(db) as conn:
        row = await conn.fetchrow(
            f"SELECT {_RUN_COLUMNS}, spec, parameters, outputs, status, updated_at"
            " FROM shoal_workflows WHERE uid = $1",
            uid,
        )
        if row is None:
            return None
        nodes = await conn.fetch(
            "SELECT * FROM shoal_nodes WHERE workflow_uid = $1"
            " ORDER BY started_at NULLS LAST, node",
            uid,
        )
    return RunDetail(
        run=_summary(row),
        spec=_load(row["spec"]) or {},
        parameters=_load(row["parameters"]) or {},
        outputs=_load(row["outputs"]),
        nodes=[
            NodeRecord(
                node=n["node"],
                phase=n["phase"],
                attempts=n["attempts"],
                exit_code=n["exit_code"],
                message=n["message"],
                outputs=_load(n["outputs"]),
                items=_load(n["items"]),
                started_at=n["started_at"],
                finished_at=n["finished_at"],
            )
            for n in nodes
        ],
        status=_load(row["status"]),
        updated_at=row["updated_at"],
    )


async def list_attempts(
    db: Any,
    uid: str,
    node: str,
    *,
    index: int | None = None,
    failed_only: bool = False,
    limit: int = 1000,
) -> list[AttemptRecord]:
    """Finished attempts of one node, by item then attempt number.

    `failed_only` keeps the attempts that did not succeed (the ones worth reading in a
    large fan-out). Only finished attempts are archived: running ones are not listed.
    """
    async with using(db) as conn:
        rows = await conn.fetch(
            "SELECT * FROM shoal_attempts WHERE workflow_uid = $1 AND node = $2"
            " AND ($3::int IS NULL OR item_index = $3)"
            " AND (NOT $4 OR phase <> 'Succeeded')"
            " ORDER BY item_index, retry, attempt LIMIT $5",
            uid,
            node,
            index,
            failed_only,
            limit,
        )
    return [
        AttemptRecord(
            node=r["node"],
            index=r["item_index"],
            attempt=r["attempt"],
            phase=r["phase"],
            exit_code=r["exit_code"],
            message=r["message"],
            outputs=_load(r["outputs"]),
            outputs_omitted=r["outputs_omitted"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            retry=r["retry"],
        )
        for r in rows
    ]


async def read_logs(
    db: Any,
    uid: str,
    node: str | None = None,
    *,
    index: int | None = None,
    attempt: int | None = None,
    since: datetime | None = None,
    after_id: int = 0,
    limit: int = 10_000,
) -> list[LogLine]:
    """Archived log lines of a run (or one node of it), in the order they were written
    (time order; a `[shoal] ... dropped` marker sits where lines went missing).

    Page through a long log by passing the last line's `id` as `after_id`.
    """
    async with using(db) as conn:
        rows = await conn.fetch(
            "SELECT id, node, item_index, attempt, at, line FROM shoal_log_lines"
            " WHERE workflow_uid = $1 AND ($2::text IS NULL OR node = $2)"
            " AND ($3::int IS NULL OR item_index = $3)"
            " AND ($4::int IS NULL OR attempt = $4)"
            " AND ($5::timestamptz IS NULL OR at >= $5)"
            " AND id > $6"
            " ORDER BY id LIMIT $7",
            uid,
            node,
            index,
            attempt,
            since,
            after_id,
            limit,
        )
    return [
        LogLine(r["id"], r["node"], r["item_index"], r["attempt"], r["at"], r["line"]) for r in rows
    ]


async def iter_logs(
    db: Any, uid: str, node: str | None = None, *, page: int = 10_000, **filters: Any
) -> AsyncIterator[LogLine]:
    """Every matching line, fetched a page at a time (for logs of any size)."""
    after = 0
    while True:
        lines = await read_logs(db, uid, node, after_id=after, limit=page, **filters)
        for line in lines:
            yield line
        if len(lines) < page:
            return
        after = lines[-1].id
