"""Versioned schema migrations, applied when the operator starts.

Migrations are append-only SQL strings: version N is `MIGRATIONS[N - 1]`. They run in
one transaction holding a transaction-level advisory lock, so two operators starting at
once apply them exactly once (the second waits, then finds nothing to do), and a failed
migration leaves the database at the previous version.
"""

from __future__ import annotations

from typing import Any

# Any fixed 64-bit key; it only has to differ from other applications' advisory locks.
LOCK_KEY = 0x5_40A1_A4C1_17E

_V1 = """
CREATE TABLE shoal_workflows (
    uid          text PRIMARY KEY,
    namespace    text NOT NULL,
    name         text NOT NULL,
    spec         jsonb NOT NULL DEFAULT '{}',
    parameters   jsonb NOT NULL DEFAULT '{}',
    labels       jsonb NOT NULL DEFAULT '{}',
    phase        text NOT NULL DEFAULT 'Pending',
    progress     text,
    message      text,
    outputs      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shoal_workflows_by_namespace ON shoal_workflows (namespace, created_at DESC);
CREATE INDEX shoal_workflows_by_name ON shoal_workflows (namespace, name, created_at DESC);
CREATE INDEX shoal_workflows_by_finish ON shoal_workflows (finished_at);

CREATE TABLE shoal_nodes (
    workflow_uid text NOT NULL REFERENCES shoal_workflows (uid) ON DELETE CASCADE,
    node         text NOT NULL,
    phase        text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    exit_code    integer,
    message      text,
    outputs      jsonb,
    items        jsonb,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (workflow_uid, node)
);

CREATE TABLE shoal_attempts (
    workflow_uid text NOT NULL REFERENCES shoal_workflows (uid) ON DELETE CASCADE,
    node         text NOT NULL,
    item_index   integer NOT NULL,
    attempt      integer NOT NULL,
    phase        text NOT NULL,
    exit_code    integer,
    message      text,
    outputs      jsonb,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (workflow_uid, node, item_index, attempt)
);

-- Append-only and written with COPY. No foreign key: lines may arrive before the run's
-- row, and retention deletes them by uid. `id` is write order, which is time order.
CREATE TABLE shoal_log_lines (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    workflow_uid text NOT NULL,
    node         text NOT NULL,
    item_index   integer NOT NULL,
    attempt      integer NOT NULL,
    at           timestamptz NOT NULL,
    line         text NOT NULL
);
CREATE INDEX shoal_log_lines_by_node ON shoal_log_lines (workflow_uid, node, id);

CREATE TABLE shoal_cron_fires (
    namespace     text NOT NULL,
    cron_name     text NOT NULL,
    scheduled_at  timestamptz NOT NULL,
    workflow_name text NOT NULL,
    fired_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, cron_name, scheduled_at)
);
"""

# v2: the rendered status as the operator last wrote it (so an archived `shoal get` shows
# exactly what a live one did: failed items, omitted outputs, retries), and a note on
# attempts whose outputs were too large to keep. Attempts lose their foreign key, as log
# lines never had one: they are written by their own task and may arrive before the run's
# row (after a database outage, say); retention deletes them by uid and by age. `retry`
# is the workflow's `shoal retry` round: a retried node numbers its attempts from 1 again,
# and the attempts of the earlier round must not be overwritten.
_V2 = """
ALTER TABLE shoal_workflows ADD COLUMN status jsonb;
ALTER TABLE shoal_attempts ADD COLUMN outputs_omitted text;
ALTER TABLE shoal_attempts ADD COLUMN retry integer NOT NULL DEFAULT 0;
ALTER TABLE shoal_attempts DROP CONSTRAINT shoal_attempts_pkey;
ALTER TABLE shoal_attempts ADD PRIMARY KEY (workflow_uid, node, item_index, retry, attempt);
ALTER TABLE shoal_attempts DROP CONSTRAINT shoal_attempts_workflow_uid_fkey;
CREATE INDEX shoal_attempts_by_finish ON shoal_attempts (finished_at);
"""

# v3: every archived log line once. A line carries its number in its container's log and
# the `shoal retry` round; an operator that restarts re-reads a running pod's log from the
# start, and a COPY retried after a lost answer repeats its batch: the unique index drops
# both repeats (markers have no number and are never dropped).
_V3 = """
ALTER TABLE shoal_log_lines ADD COLUMN retry integer NOT NULL DEFAULT 0;
ALTER TABLE shoal_log_lines ADD COLUMN line_no integer;
CREATE UNIQUE INDEX shoal_log_lines_once
    ON shoal_log_lines (workflow_uid, node, item_index, retry, attempt, line_no);
"""

# v4: the memo cache of `memoize` (docs/flow-control.md), shared by a namespace's
# Workflows when the archive is configured; bounded per namespace by archive/memo.py.
_V4 = """
CREATE TABLE shoal_memo (
    namespace    text NOT NULL,
    key          text NOT NULL,
    outputs      jsonb NOT NULL,
    workflow     text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    used_at      timestamptz NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX shoal_memo_by_use ON shoal_memo (namespace, used_at);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)
LATEST = len(MIGRATIONS)


async def migrate(conn: Any) -> int:
    """Bring the database to `LATEST`; returns the version it is at afterwards.

    Safe to call any number of times, from any number of processes at once.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        # Under the lock, so concurrent first starts cannot race on creating it.
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS shoal_schema_version ("
            " version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current: int = await conn.fetchval(
            "SELECT coalesce(max(version), 0) FROM shoal_schema_version"
        )
        if current > LATEST:
            raise RuntimeError(
                f"the archive database is at schema version {current}, newer than this "
                f"operator's {LATEST}: upgrade the operator"
            )
        for version in range(current + 1, LATEST + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO shoal_schema_version (version) VALUES ($1)", version)
        return max(current, LATEST)


async def schema_version(conn: Any) -> int:
    """The applied version (0 for an empty database)."""
    exists = await conn.fetchval("SELECT to_regclass('shoal_schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM shoal_schema_version"))
