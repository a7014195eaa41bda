"""Searching the archive's runs a page at a time, for the REST API.

Keyset paging (newest first, by creation time then uid): a page costs the same however
deep it is, and a run archived while a client pages never shifts the pages it has not
read. Label selectors of the equality kinds Kubernetes has (`k=v`, `k==v`, `k!=v`, `k`,
`!k`) become jsonb containment and key tests; every value is a bound parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shoal.archive.db import using
from shoal.archive.reader import _RUN_COLUMNS, RunSummary, _summary

__all__ = [
    "MAX_NAMESPACES",
    "Cursor",
    "Requirement",
    "decode_cursor",
    "encode_cursor",
    "namespaces",
    "parse_selector",
    "search_runs",
]

MAX_NAMESPACES = 1000
"""Namespaces with archived runs considered for one caller's cross-namespace search."""
MAX_REQUIREMENTS = 20
_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_./]{0,252})$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str
    """`=`, `!=`, `exists` or `!exists`."""
    value: str = ""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page ended."""

    created_at: datetime
    uid: str


def parse_selector(text: str) -> list[Requirement]:
    """A label selector's requirements; ValueError naming the one it cannot read."""
    found: list[Requirement] = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        if "!=" in raw:
            key, _, value = raw.partition("!=")
            op = "!="
        elif "=" in raw:
            key, _, value = raw.replace("==", "=", 1).partition("=")
            op = "="
        elif raw.startswith("!"):
            key, value, op = raw[1:], "", "!exists"
        else:
            key, value, op = raw, "", "exists"
        key, value = key.strip(), value.strip()
        if not _KEY.match(key) or not _VALUE.match(value):
            raise ValueError(f"cannot read label selector requirement {raw[:100]!r}")
        found.append(Requirement(key, op, value))
    if len(found) > MAX_REQUIREMENTS:
        raise ValueError(f"a label selector has at most {MAX_REQUIREMENTS} requirements")
    return found


def encode_cursor(cursor: Cursor) -> str:
    doc = {"t": cursor.created_at.isoformat(), "u": cursor.uid}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def decode_cursor(token: str) -> Cursor:
    """The cursor a previous page returned; ValueError for anything else."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
        return Cursor(datetime.fromisoformat(str(doc["t"])), str(doc["u"])[:64])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValueError("not a continue token this API returned") from None


@dataclass
class _Where:
    clauses: list[str]
    args: list[Any]

    def add(self, clause: str, *values: Any) -> None:
        """`clause` with `{}` standing for each value's placeholder, in order."""
        marks = []
        for value in values:
            self.args.append(value)
            marks.append(f"${len(self.args)}")
        self.clauses.append(clause.format(*marks))


def _label_clause(where: _Where, req: Requirement) -> None:
    if req.op == "=":
        where.add("labels @> {}::jsonb", json.dumps({req.key: req.value}))
    elif req.op == "!=":
        where.add("NOT (labels @> {}::jsonb)", json.dumps({req.key: req.value}))
    elif req.op == "exists":
        where.add("labels ? {}", req.key)
    else:
        where.add("NOT (labels ? {})", req.key)


async def search_runs(
    db: Any,
    *,
    namespaces: list[str] | None,
    phase: str | None = None,
    name_prefix: str | None = None,
    labels: list[Requirement] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Cursor | None = None,
    limit: int = 100,
) -> tuple[list[RunSummary], Cursor | None]:
    """One page of runs, newest first, and the cursor of the next page (None: the last).

    `namespaces` None means every namespace; an empty list matches nothing.
    """
    where = _Where([], [])
    if namespaces is not None:
        where.add("namespace = ANY({}::text[])", namespaces)
    if phase:
        where.add("phase = {}", phase)
    if name_prefix:
        where.add("left(name, length({})) = {}", name_prefix, name_prefix)
    for req in labels or []:
        _label_clause(where, req)
    if since is not None:
        where.add("created_at >= {}", since)
    if until is not None:
        where.add("created_at < {}", until)
    if after is not None:
        where.add(
            "(created_at < {} OR (created_at = {} AND uid > {}))",
            after.created_at,
            after.created_at,
            after.uid,
        )
    where.args.append(limit + 1)
    condition = " AND ".join(where.clauses) or "TRUE"
    sql = (
        f"SELECT {_RUN_COLUMNS} FROM shoal_workflows WHERE {condition}"
        f" ORDER BY created_at DESC, uid LIMIT ${len(where.args)}"
    )
    async with using(db) as conn:
        rows = await conn.fetch(sql, *where.args)
    runs = [_summary(r) for r in rows[:limit]]
    more = len(rows) > limit and runs
    return runs, Cursor(runs[-1].created_at, runs[-1].uid) if more else None


async def namespaces(db: Any, limit: int = MAX_NAMESPACES) -> list[str]:
    """Namespaces that have archived runs (at most `limit`)."""
    async with using(db) as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT namespace FROM shoal_workflows ORDER BY namespace LIMIT $1", limit
        )
    return [str(r["namespace"]) for r in rows]
