"""The archive as the operator holds it: one pool, a log sink, a run and an attempt recorder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.archive.attempts import AttemptRecorder, FinishedAttempt
from shoal.archive.db import DeferredPool
from shoal.archive.recorder import RunRecorder
from shoal.archive.schema import LATEST
from shoal.archive.sink import ArchiveLogSink
from shoal.archive.store import delete_expired, save_attempts, save_run

log = logging.getLogger("shoal.archive")


@dataclass(frozen=True, slots=True)
class ArchiveSettings:
    ttl_days: float | None = None
    """Delete runs (and their logs) finished more than this many days ago; None keeps all."""
    max_run_log_chars: int | None = None
    """Stop archiving a run's log lines after this many characters; None: no cap."""
    retention_interval_seconds: float = 3600.0


@dataclass
class Archive:
    pool: DeferredPool
    sink: ArchiveLogSink
    runs: RunRecorder
    attempts: AttemptRecorder
    settings: ArchiveSettings = field(default_factory=ArchiveSettings)
    _retention: asyncio.Task[None] | None = None
    cluster_duty: Callable[[], bool] = lambda: True
    """Whether this operator runs retention (sharded: the holder of shard 0 only)."""

    @classmethod
    async def open(
        cls,
        dsn: str,
        on_dropped: Callable[[int], None] | None = None,
        settings: ArchiveSettings | None = None,
        on_attempts_dropped: Callable[[int], None] | None = None,
    ) -> Archive:
        """Connect, migrate and start the writers. Never fails for an unreachable database:
        the operator runs Workflows meanwhile, the writers buffer (bounded) and the pool
        keeps trying in the background (`problem` says why, /readyz reports it)."""
        settings = settings or ArchiveSettings()
        pool = DeferredPool(dsn)
        await pool.open()

        async def save(body: dict[str, Any]) -> None:
            await save_run(pool, body, body.get("status") or {})

        async def save_rows(rows: Sequence[FinishedAttempt]) -> None:
            await save_attempts(pool, rows)

        sink = ArchiveLogSink(pool, on_dropped=on_dropped, max_run_chars=settings.max_run_log_chars)
        attempts = AttemptRecorder(save_rows, on_dropped=on_attempts_dropped)
        archive = cls(pool, sink, RunRecorder(save), attempts, settings)
        archive.sink.start()
        archive.runs.start()
        archive.attempts.start()
        if settings.ttl_days is not None:
            archive._retention = asyncio.create_task(archive._expire(), name="shoal-retention")
        if pool.connected:
            log.info("archive: PostgreSQL, schema version %d", LATEST)
        return archive

    @property
    def problem(self) -> str | None:
        """Why the archive is degraded (database not reached yet), or None."""
        return self.pool.problem

    async def _expire(self) -> None:
        # A housekeeping timer, not reconciliation: nothing waits on it.
        assert self.settings.ttl_days is not None
        while True:
            try:
                deleted = (
                    await delete_expired(self.pool, self.settings.ttl_days)
                    if self.cluster_duty()
                    else 0
                )
                if deleted:
                    log.info(
                        "archive: deleted %d runs past the %g-day TTL",
                        deleted,
                        self.settings.ttl_days,
                    )
            except Exception as err:
                log.warning("archive: retention failed (%s); next try in an interval", err)
            await asyncio.sleep(self.settings.retention_interval_seconds)

    async def close(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        await self.runs.close()
        await self.attempts.close()
        await self.sink.close()
        await self.pool.close()


_KV_PASSWORD = re.compile(r"(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&]*")


def describe(dsn: str) -> str:
    """The DSN without its password, for logs (URL form, query parameter or key=value)."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return _KV_PASSWORD.sub("password=***", dsn)
    rest = _QUERY_PASSWORD.sub(r"\1***", rest)
    if "@" not in rest:
        return f"{scheme}://{rest}"
    auth, _, host = rest.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
