"""`shoal get`: one workflow, from the cluster while it exists and from the archive after.

The Workflow object is deleted sooner or later (`ttlSecondsAfterFinished`, by hand);
with the PostgreSQL archive configured, `shoal get` then shows the run the operator
recorded, in the same layout, marked as archived. `--node` shows one node with every
finished attempt of every item, which only the archive keeps (the Workflow holds
per-node aggregates, so a 100,000-item fan-out fits in it).

Nothing here imports asyncpg or httpx at module level: `shoal run` never needs them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import yaml

from shoal.archive.objects import archived_object, attempt_json
from shoal.archive.objects import rfc3339_or_none as _rfc3339
from shoal.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    FINISHED,
    CliError,
    WatchTimeout,
    ago,
    clip,
    connection_args,
    database_args,
    duration,
    fail,
    follow_workflow,
    items_summary,
    node_order,
    not_found,
    out,
    phase,
    resolve_database,
    run_against_cluster,
    short_json,
    spec_nodes,
    table,
    timeout_arg,
)
from shoal.cli.sync_lines import node_sync_lines, workflow_locks_lines

if TYPE_CHECKING:
    from shoal.archive.reader import AttemptRecord, RunDetail
    from shoal.kube.api import KubeApi

DEFAULT_ATTEMPT_LIMIT = 100


__all__ = [
    "DEFAULT_ATTEMPT_LIMIT",
    "archive_note",
    "archived_object",
    "attempt_json",
    "check",
    "configure",
    "describe_archived",
    "describe_node",
    "describe_workflow",
    "find_archived",
    "get",
    "live_or_none",
    "missing_everywhere",
    "print_workflow",
    "show",
]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal get`'s arguments and handler."""
    p.description = (
        "Show one Workflow's status: phase, progress, times, message, a table "
        "of its nodes and their outputs. A Workflow gone from the cluster is read from the "
        "archive (PostgreSQL), when one is configured. --node shows one node with every "
        "finished attempt of every item (from the archive)."
    )
    p.add_argument("name", help="workflow name")
    p.add_argument(
        "-o",
        "--output",
        choices=["text", "json", "yaml"],
        default="text",
        help="json, yaml: the whole object (metadata, spec and status)",
    )
    p.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="print the workflow again on every change, until it finishes (or --timeout)",
    )
    timeout_arg(p, None, "watching")
    p.add_argument(
        "--node", help="show this node: its status and every finished attempt of every item"
    )
    p.add_argument(
        "--item", type=int, metavar="N", help="with --node: only item N of a fan-out node"
    )
    p.add_argument(
        "--failed", action="store_true", help="with --node: only attempts that did not succeed"
    )
    p.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_ATTEMPT_LIMIT,
        metavar="N",
        help=f"with --node: list at most N attempts (default {DEFAULT_ATTEMPT_LIMIT})",
    )
    database_args(p, "read when the Workflow is gone and for --node")
    connection_args(p)
    p.set_defaults(handler=get)


def get(args: argparse.Namespace) -> int:
    """Live from the cluster, else from the archive."""
    problem = check(args)
    if problem:
        return fail(problem, EXIT_INVALID)
    dsn = resolve_database(args)

    async def run(api: KubeApi, namespace: str) -> int:
        return await show(api, namespace, args, dsn)

    return run_against_cluster(args, run)


def check(args: argparse.Namespace) -> str | None:
    """A usage problem in the flags (exit 2), before anything is contacted."""
    if args.node is None and (args.item is not None or args.failed):
        return "--item and --failed need --node NODE"
    if args.limit < 1:
        return "--limit must be at least 1"
    if args.watch and args.node is not None:
        return "--watch shows the whole workflow; drop --node"
    return None


def describe_workflow(obj: dict[str, Any]) -> list[str]:
    """`shoal get`: the workflow, then a table of its nodes, then their outputs."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    created = meta.get("creationTimestamp")
    lines = [
        f"Name:       {meta.get('name')}",
        f"Namespace:  {meta.get('namespace')}",
        f"Phase:      {phase(obj)}",
        f"Progress:   {status.get('progress') or '-'}",
        f"Created:    {created} ({ago(created)} ago)",
    ]
    if status.get("startedAt"):
        lines.append(f"Started:    {status['startedAt']}")
    if status.get("finishedAt"):
        took = duration(status)
        lines.append(f"Finished:   {status['finishedAt']}" + (f" (took {took})" if took else ""))
    if status.get("retries"):
        lines.append(f"Retries:    {status['retries']}")
    params = (obj.get("spec") or {}).get("parameters")
    if params:
        lines.append(f"Parameters: {short_json(params)}")
    if status.get("message"):
        lines.append(f"Message:    {status['message']}")
    lines.extend(workflow_locks_lines(status))  # synchronization (cli/sync_lines.py)
    nodes = status.get("nodes") or {}
    rows = []
    for name in node_order(obj):
        entry = nodes.get(name) or {}
        exit_code = entry.get("exitCode")
        message = str(entry.get("message") or "")
        if entry.get("progress") is not None and entry.get("phase") == "Running":
            message = f"{entry['progress']:.0f}% {message}".strip()
        rows.append(
            [
                name,
                str(entry.get("phase") or "Pending"),
                str(entry.get("attempts") or 0),
                items_summary(entry),
                "-" if exit_code is None else str(exit_code),
                clip(message, 100),
            ]
        )
    lines.append("")
    lines.extend(table(["NODE", "PHASE", "ATTEMPTS", "ITEMS", "EXIT", "MESSAGE"], rows))
    failed_items = [
        (name, item)
        for name in node_order(obj)
        for item in (nodes.get(name) or {}).get("failedItems") or []
    ]
    if failed_items:
        lines.extend(["", "Failed items:"])
        for name, item in failed_items:
            lines.append(f"  {name}[{item.get('index')}]: {clip(str(item.get('message')), 120)}")
    lines.extend(node_sync_lines(status, node_order(obj)))
    outputs = [
        (name, nodes[name])
        for name in node_order(obj)
        if name in nodes and (nodes[name].get("outputs") or nodes[name].get("outputsOmitted"))
    ]
    if outputs:
        lines.extend(["", "Outputs:"])
        for name, entry in outputs:
            if entry.get("outputsOmitted"):
                lines.append(f"  {name}: ({entry['outputsOmitted']})")
            for key, value in (entry.get("outputs") or {}).items():
                lines.append(f"  {name}.{key} = {short_json(value, 300)}")
    return lines


# -- reading -------------------------------------------------------------------------------


async def live_or_none(api: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    """The Workflow, or None when the cluster has no such Workflow (any more)."""
    from shoal.kube.api import ApiError, workflows_path

    try:
        return await api.get(workflows_path(namespace, name))
    except ApiError as err:
        if err.status != 404:
            raise
        if "could not find the requested resource" in str(err):  # no CRD at all
            raise CliError(not_found(err, namespace, name)) from None
        return None


async def connect(dsn: str) -> Any:
    """An asyncpg connection to the archive, or a CliError saying where it failed."""
    import asyncpg

    from shoal.archive.service import describe

    try:
        return await asyncpg.connect(dsn, timeout=30)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        raise CliError(f"cannot read the archive at {describe(dsn)}: {err}") from None


async def find_archived(dsn: str, namespace: str, name: str) -> RunDetail | None:
    """The latest archived run called `name` in `namespace`."""
    from shoal.archive.reader import find_run, get_run

    conn = await connect(dsn)
    try:
        summary = await find_run(conn, namespace, name)
        return await get_run(conn, summary.uid) if summary is not None else None
    finally:
        await conn.close()


def missing_everywhere(namespace: str, name: str) -> CliError:
    return CliError(
        f"workflow {name!r} not found in namespace {namespace!r} (cluster) nor in the archive"
    )


def archive_note(detail: RunDetail) -> dict[str, Any]:
    """What marks an archived view (the `archived` key of `-o json|yaml`)."""
    return {
        "uid": detail.run.uid,
        "recordedAt": _rfc3339(detail.updated_at),
        "source": "the Workflow is gone from the cluster; this is the run the operator archived",
    }


# -- rendering -----------------------------------------------------------------------------


def describe_archived(obj: dict[str, Any], detail: RunDetail) -> list[str]:
    """The live layout, with an `Archived:` line under the namespace."""
    lines = describe_workflow(obj)
    recorded = _rfc3339(detail.updated_at) or "-"
    gone = f"yes: the Workflow is gone (uid {detail.run.uid}, last recorded {recorded})"
    lines.insert(2, f"Archived:   {gone}")
    return lines


def _took(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{max(0.0, (end - start).total_seconds()):.1f}s"


def _is_fan_out(obj: dict[str, Any], node: str) -> bool:
    for n in spec_nodes(obj):
        if n.get("name") == node:
            return n.get("forEach") is not None or n.get("withSequence") is not None
    return False


def _attempt(a: AttemptRecord) -> str:
    """The attempt number, and the `shoal retry` round it ran in when there was one."""
    return str(a.attempt) if not a.retry else f"{a.attempt} (retry {a.retry})"


def describe_node(
    obj: dict[str, Any],
    node: str,
    attempts: list[AttemptRecord] | None,
    *,
    more: bool = False,
    archived: bool = False,
) -> list[str]:
    """`shoal get NAME --node NODE`: the node's status, then one row per finished attempt.

    `attempts` None means no archive to read them from; `more` that the list was cut at
    --limit. Outputs per attempt are listed when they are few enough to read (one item).
    """
    meta = obj.get("metadata") or {}
    entry = ((obj.get("status") or {}).get("nodes") or {}).get(node) or {}
    fan_out = _is_fan_out(obj, node)
    where = f"{meta.get('name')} in {meta.get('namespace')}" + (" (archived)" if archived else "")
    lines = [f"Workflow:   {where}", f"Node:       {node}" + (" (fan-out)" if fan_out else "")]
    lines.append(f"Phase:      {entry.get('phase') or 'Pending'}")
    for label, key in (("Started:", "startedAt"), ("Finished:", "finishedAt")):
        if entry.get(key):
            lines.append(f"{label:<11} {entry[key]}")
    if entry.get("attempts"):
        lines.append(f"Attempts:   {entry['attempts']}")
    if isinstance(entry.get("items"), dict):
        lines.append(f"Items:      {items_summary(entry)}")
    if entry.get("exitCode") is not None:
        lines.append(f"Exit code:  {entry['exitCode']}")
    if entry.get("message"):
        lines.append(f"Message:    {entry['message']}")
    if attempts is not None:
        rows = [
            [
                str(a.index) if fan_out else "-",
                _attempt(a),
                a.phase,
                _rfc3339(a.started_at) or "-",
                _took(a.started_at, a.finished_at),
                "-" if a.exit_code is None else str(a.exit_code),
                clip(a.message or "", 100),
            ]
            for a in attempts
        ]
        lines.append("")
        if rows:
            headers = ["ITEM", "ATTEMPT", "PHASE", "STARTED", "DURATION", "EXIT", "MESSAGE"]
            lines.extend(table(headers, rows))
        else:
            lines.append("No finished attempts archived for this node.")
        if more:
            lines.append(
                f"(the first {len(attempts)} attempts; --limit N shows more, --item N one "
                "item, --failed the failures)"
            )
        few = [a for a in attempts if a.outputs or a.outputs_omitted]
        if few and (not fan_out or len({a.index for a in attempts}) == 1):
            lines.extend(["", "Attempt outputs:"])
            for a in few:
                label = f"{node}[{a.index}]" if fan_out else node
                label += f"#{a.attempt}" + (f" (retry {a.retry})" if a.retry else "")
                if a.outputs_omitted:
                    lines.append(f"  {label}: ({a.outputs_omitted})")
                for key, value in (a.outputs or {}).items():
                    lines.append(f"  {label}.{key} = {short_json(value, 300)}")
    if entry.get("outputs") or entry.get("outputsOmitted"):
        lines.extend(["", "Outputs:"])
        if entry.get("outputsOmitted"):
            lines.append(f"  {node}: ({entry['outputsOmitted']})")
        for key, value in (entry.get("outputs") or {}).items():
            lines.append(f"  {node}.{key} = {short_json(value, 300)}")
    return lines


def _dump(doc: Any, output: str) -> None:
    if output == "yaml":
        out(yaml.safe_dump(doc, sort_keys=True, allow_unicode=True).rstrip("\n"))
    else:
        out(json.dumps(doc, indent=2, sort_keys=True, default=str))


# -- the command ---------------------------------------------------------------------------


async def show(api: KubeApi, namespace: str, args: argparse.Namespace, dsn: str | None) -> int:
    """Print the workflow (live, else archived), or one of its nodes with `--node`."""
    obj = await live_or_none(api, namespace, args.name)
    detail: RunDetail | None = None
    if obj is None:
        if dsn is None:
            raise CliError(f"workflow {args.name!r} not found in namespace {namespace!r}")
        detail = await find_archived(dsn, namespace, args.name)
        if detail is None:
            raise missing_everywhere(namespace, args.name)
        obj = archived_object(detail)
        print(
            f"workflow {args.name} is gone from the cluster; showing its archived run",
            file=sys.stderr,
            flush=True,
        )
    if args.node is not None:
        return await _show_node(obj, args, dsn, detail)
    if detail is not None:
        print_workflow({**obj, "archived": archive_note(detail)}, args.output, detail)
        return EXIT_OK
    print_workflow(obj, args.output)
    if args.watch and phase(obj) not in FINISHED:
        await _watch(api, namespace, args)
    return EXIT_OK


def print_workflow(obj: dict[str, Any], output: str, detail: RunDetail | None = None) -> None:
    """The whole object as JSON or YAML, else the readable description."""
    if output in ("json", "yaml"):
        _dump(obj, output)
        return
    for line in describe_archived(obj, detail) if detail else describe_workflow(obj):
        out(line)


async def _watch(api: KubeApi, namespace: str, args: argparse.Namespace) -> None:
    """Print the workflow again on each change until it finishes; CliError at --timeout."""

    def again(obj: dict[str, Any]) -> None:
        out("---" if args.output == "yaml" else "")
        print_workflow(obj, args.output)

    try:
        await follow_workflow(api, namespace, args.name, again, seconds=args.timeout)
    except WatchTimeout as err:
        raise CliError(
            f"gave up after {args.timeout or 0:g}s: workflow {args.name!r} is still "
            f"{phase(err.last)}"
        ) from None


async def _show_node(
    obj: dict[str, Any], args: argparse.Namespace, dsn: str | None, detail: RunDetail | None
) -> int:
    from shoal.archive.reader import list_attempts

    order = node_order(obj)
    if args.node not in order:
        raise CliError(
            f"workflow {args.name!r} has no node {args.node!r} (its nodes: {', '.join(order)})"
        )
    if args.item is not None and not _is_fan_out(obj, args.node):
        raise CliError(f"node {args.node!r} is not a fan-out (forEach) node; drop --item")
    attempts: list[AttemptRecord] | None = None
    if dsn is not None:
        conn = await connect(dsn)
        try:
            attempts = await list_attempts(
                conn,
                obj["metadata"]["uid"],
                args.node,
                index=args.item,
                failed_only=args.failed,
                limit=args.limit + 1,
            )
        finally:
            await conn.close()
    more = attempts is not None and len(attempts) > args.limit
    if attempts is not None:
        attempts = attempts[: args.limit]
    entry = ((obj.get("status") or {}).get("nodes") or {}).get(args.node) or {}
    if args.output in ("json", "yaml"):
        doc: dict[str, Any] = {"node": args.node, "status": entry}
        if attempts is not None:
            doc["attempts"] = [attempt_json(a) for a in attempts]
            doc["truncated"] = more
        if detail is not None:
            doc["archived"] = archive_note(detail)
        _dump(doc, args.output)
    else:
        for line in describe_node(obj, args.node, attempts, more=more, archived=bool(detail)):
            out(line)
    if attempts is None:
        print(
            "per-attempt history is kept in the archive: pass --database-url (or set "
            "SHOAL_DATABASE_URL) to list every attempt of every item",
            file=sys.stderr,
        )
    elif detail is None and entry.get("phase") == "Running":
        print(
            "running attempts are not listed until they finish (see shoal logs, or the pods)",
            file=sys.stderr,
        )
    return EXIT_OK
