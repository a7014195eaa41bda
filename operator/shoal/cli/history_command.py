"""`shoal history`: past runs from the archive (PostgreSQL), including deleted Workflows."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from shoal.cli.common import fail
from shoal.core.timestamps import parse_rfc3339

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`90s`, `30m`, `2h`, `7d`, `1w` before now, or an ISO 8601 date or time (UTC if naive)."""
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        when = parse_rfc3339(text.strip())
    except ValueError:
        when = None
    if when is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use a duration (30m, 2h, 7d) or an ISO date (2026-03-01)"
        )
    return when


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal history`'s arguments and handler."""
    p.description = "List runs recorded in the archive, newest first."
    p.add_argument("-n", "--namespace", help="only this namespace (default: all)")
    p.add_argument("--phase", help="only runs in this phase (Succeeded, Failed, ...)")
    p.add_argument(
        "--since", type=parse_since, help="only runs created since: 30m, 2h, 7d or a date"
    )
    p.add_argument("--limit", type=int, default=50, help="at most this many runs (50)")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.add_argument("--database-url", help="PostgreSQL DSN (SHOAL_DATABASE_URL)")
    p.add_argument(
        "--database-url-file",
        default=os.environ.get("SHOAL_DATABASE_URL_FILE"),
        help="file holding the DSN (SHOAL_DATABASE_URL_FILE)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the archive; every expected failure is one `error:` line (the DSN never shown)."""
    from shoal.archive.db import resolve_dsn

    try:
        dsn = resolve_dsn(args.database_url, args.database_url_file)
    except OSError as err:
        return fail(f"cannot read --database-url-file {args.database_url_file}: {err.strerror}", 2)
    if dsn is None:
        return fail("no archive database: pass --database-url or set SHOAL_DATABASE_URL", 2)
    try:
        runs = asyncio.run(_fetch(dsn, args))
    except Exception as err:  # unreachable, refused, no schema: the driver's own words
        why = str(err).replace(dsn, "<database-url>")
        return fail(f"cannot read the archive: {type(err).__name__}: {why}")
    if args.output == "json":
        print(json.dumps(runs, indent=2))
    else:
        print(render(runs))
    return 0


async def _fetch(dsn: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    import asyncpg

    from shoal.archive import reader

    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        found = await reader.list_runs(
            conn, namespace=args.namespace, phase=args.phase, since=args.since, limit=args.limit
        )
    finally:
        await conn.close()
    return [
        {
            "namespace": r.namespace,
            "name": r.name,
            "uid": r.uid,
            "phase": r.phase,
            "progress": r.progress,
            "message": r.message,
            "createdAt": r.created_at.isoformat(),
            "startedAt": r.started_at.isoformat() if r.started_at else None,
            "finishedAt": r.finished_at.isoformat() if r.finished_at else None,
        }
        for r in found
    ]


def _duration(run: dict[str, Any]) -> str:
    if not run["startedAt"] or not run["finishedAt"]:
        return "-"
    seconds = int(
        (
            datetime.fromisoformat(run["finishedAt"]) - datetime.fromisoformat(run["startedAt"])
        ).total_seconds()
    )
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def render(runs: list[dict[str, Any]]) -> str:
    """A kubectl-style table, newest first."""
    if not runs:
        return "No runs found."
    header = ("NAMESPACE", "NAME", "PHASE", "PROGRESS", "CREATED", "DURATION")
    rows = [
        (
            r["namespace"],
            r["name"],
            r["phase"],
            r["progress"] or "-",
            r["createdAt"][:19].replace("T", " "),
            _duration(r),
        )
        for r in runs
    ]
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "   ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
