"""Runs and nodes as they change, from the status the runner already renders; attempts.

The runner writes the core's typed status (`shoal.core.status`) to the Workflow object;
`save_run` reads that object back with the core's reader and records it (plus the
object's metadata and spec), so the archive never disagrees with what `kubectl get`
showed. Writes are upserts keyed by uid: repeating one is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shoal.api.workflow import NodeStatus
from shoal.archive.attempts import FinishedAttempt
from shoal.archive.db import using
from shoal.archive.pgtext import pg_json, pg_text
from shoal.core.status_reader import read_status
from shoal.core.timestamps import parse_rfc3339

_UPSERT_RUN = """
INSERT INTO shoal_workflows AS w (uid, namespace, name, spec, parameters, labels, phase,
    progress, message, outputs, created_at, started_at, finished_at, status, updated_at)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $9, $10::jsonb,
    coalesce($11, now()), $12, $13, $14::jsonb, now())
ON CONFLICT (uid) DO UPDATE SET
    spec = EXCLUDED.spec, parameters = EXCLUDED.parameters, labels = EXCLUDED.labels,
    phase = EXCLUDED.phase, progress = EXCLUDED.progress, message = EXCLUDED.message,
    outputs = EXCLUDED.outputs, started_at = EXCLUDED.started_at,
    finished_at = EXCLUDED.finished_at, status = EXCLUDED.status, updated_at = now()
"""

_UPSERT_NODE = """
INSERT INTO shoal_nodes AS n (workflow_uid, node, phase, attempts, exit_code, message,
    outputs, items, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10)
ON CONFLICT (workflow_uid, node) DO UPDATE SET
    phase = EXCLUDED.phase, attempts = EXCLUDED.attempts, exit_code = EXCLUDED.exit_code,
    message = EXCLUDED.message, outputs = EXCLUDED.outputs, items = EXCLUDED.items,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
"""

_UPSERT_ATTEMPT = """
INSERT INTO shoal_attempts (workflow_uid, node, item_index, retry, attempt, phase, exit_code,
    message, outputs, outputs_omitted, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12)
ON CONFLICT (workflow_uid, node, item_index, retry, attempt) DO UPDATE SET
    phase = EXCLUDED.phase, exit_code = EXCLUDED.exit_code, message = EXCLUDED.message,
    outputs = EXCLUDED.outputs, outputs_omitted = EXCLUDED.outputs_omitted,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
"""


def _text(value: Any) -> str | None:
    return None if value is None else pg_text(str(value))


async def save_run(db: Any, body: dict[str, Any], status: dict[str, Any]) -> None:
    """Record a Workflow (`body`: its metadata and spec) with its rendered `status`.

    `db` is an asyncpg pool or connection. The run and its nodes commit together. The
    columns come from the typed status (`read_status`, which drops what does not fit);
    the `status` column keeps the object as the API server held it.
    """
    meta = body["metadata"]
    spec = body.get("spec") or {}
    uid = meta["uid"]
    typed = read_status(status)
    run = (
        uid,
        meta["namespace"],
        meta["name"],
        pg_json(spec),
        pg_json(spec.get("parameters") or {}),
        pg_json(meta.get("labels") or {}),
        typed.phase.value,
        _text(typed.progress),
        _text(typed.message),
        None,  # run outputs: the status has none yet (WorkflowStatus declares no such field)
        parse_rfc3339(meta.get("creationTimestamp")),
        parse_rfc3339(typed.started_at),
        parse_rfc3339(typed.finished_at),
        pg_json(status),
    )
    nodes = [_node_row(uid, name, entry) for name, entry in typed.nodes.items()]
    async with using(db) as conn, conn.transaction():
        await conn.execute(_UPSERT_RUN, *run)
        if nodes:
            await conn.executemany(_UPSERT_NODE, nodes)


def _node_row(uid: str, name: str, entry: NodeStatus) -> tuple[Any, ...]:
    """One `shoal_nodes` row; `items` holds the counts the status held, as it held them."""
    counts = entry.items
    items = None if counts is None else counts.model_dump(by_alias=True, exclude_unset=True)
    return (
        uid,
        name,
        entry.phase.value,
        entry.attempts,
        entry.exit_code,
        _text(entry.message),
        pg_json(entry.outputs),
        pg_json(items),
        parse_rfc3339(entry.started_at),
        parse_rfc3339(entry.finished_at),
    )


async def save_attempts(db: Any, rows: Sequence[FinishedAttempt]) -> None:
    """Record finished attempts (the per-item detail the Workflow object omits) in one
    transaction; repeating a row is harmless (an upsert on its key)."""
    args = [
        (
            r.uid,
            r.node,
            r.index,
            r.retry,
            r.attempt,
            r.phase,
            r.exit_code,
            r.message,
            r.outputs_json,
            r.outputs_omitted,
            r.started_at,
            r.finished_at,
        )
        for r in rows
    ]
    async with using(db) as conn, conn.transaction():
        await conn.executemany(_UPSERT_ATTEMPT, args)


async def save_attempt(
    db: Any,
    uid: str,
    node: str,
    index: int,
    attempt: int,
    *,
    phase: str,
    exit_code: int | None = None,
    message: str | None = None,
    outputs: dict[str, Any] | None = None,
    outputs_omitted: str | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    retry: int = 0,
) -> None:
    """Record one attempt of one item."""
    row = FinishedAttempt(
        uid,
        node,
        index,
        attempt,
        retry,
        phase,
        exit_code,
        message,
        pg_json(outputs),
        outputs_omitted,
        started_at,
        finished_at,
    )
    await save_attempts(db, [row])


async def record_cron_fire(
    db: Any, namespace: str, cron_name: str, scheduled_at: datetime, workflow_name: str
) -> bool:
    """Record a CronWorkflow firing; False if that scheduled time was already recorded."""
    async with using(db) as conn:
        status: str = await conn.execute(
            "INSERT INTO shoal_cron_fires (namespace, cron_name, scheduled_at, workflow_name)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            namespace,
            cron_name,
            scheduled_at,
            workflow_name,
        )
    return status.endswith(" 1")


async def delete_expired(db: Any, older_than_days: float) -> int:
    """Retention: delete runs finished more than `older_than_days` ago, with their logs.

    Returns how many runs were deleted.
    """
    async with using(db) as conn, conn.transaction():
        uids: list[str] = [
            r["uid"]
            for r in await conn.fetch(
                "DELETE FROM shoal_workflows WHERE finished_at < now() - make_interval("
                "secs => $1) RETURNING uid",
                older_than_days * 86400.0,
            )
        ]
        if uids:
            for table in ("shoal_log_lines", "shoal_attempts"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE workflow_uid = ANY($1::text[])", uids
                )
        # Lines and attempts of runs that never got a row (the operator stopped first): by
        # age.
        for table, stamp in (("shoal_log_lines", "at"), ("shoal_attempts", "finished_at")):
            await conn.execute(
                f"DELETE FROM {table} x WHERE {stamp} < now() - make_interval(secs => $1)"
                " AND NOT EXISTS (SELECT 1 FROM shoal_workflows w WHERE w.uid = x.workflow_uid)",
                older_than_days * 86400.0,
            )
    return len(uids)
