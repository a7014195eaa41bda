"""The archive as the operator holds it: one pool, one log sink, one run recorder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.archive.db import open_pool
from shoal.archive.recorder import RunRecorder
from shoal.archive.schema import LATEST
from shoal.archive.sink import ArchiveLogSink
from shoal.archive.store import save_run

log = logging.getLogger("shoal.archive")


@dataclass
class Archive:
    pool: Any
    sink: ArchiveLogSink
    runs: RunRecorder

    @classmethod
    async def open(cls, dsn: str, on_dropped: Callable[[int], None] | None = None) -> Archive:
        """Migrate, connect and start the writers. Fails if the database is unreachable:
        an operator told to archive should not start silently without it."""
        pool = await open_pool(dsn)

        async def save(body: dict[str, Any]) -> None:
            await save_run(pool, body, body.get("status") or {})

        archive = cls(pool, ArchiveLogSink(pool, on_dropped=on_dropped), RunRecorder(save))
        archive.sink.start()
        archive.runs.start()
        log.info("archive: PostgreSQL, schema version %d", LATEST)
        return archive

    async def close(self) -> None:
        await self.runs.close()
        await self.sink.close()
        await self.pool.close()


def describe(dsn: str) -> str:
    """The DSN without its password, for logs."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or "@" not in rest:
        return dsn
    auth, _, host = rest.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
