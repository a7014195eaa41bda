"""Finding and opening the archive database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from shoal.archive.schema import migrate

ENV_VAR = "SHOAL_DATABASE_URL"
log = logging.getLogger("shoal.archive")


def resolve_dsn(
    url: str | None = None,
    url_file: str | Path | None = None,
    environ: dict[str, str] | None = None,
) -> str | None:
    """The DSN from, in order: a flag, a file (a mounted Secret), `SHOAL_DATABASE_URL`.

    None means no archive: the operator then runs status-only.
    """
    if url:
        return url
    if url_file:
        text = Path(url_file).read_text(encoding="utf-8").strip()
        if text:
            return text
    env = os.environ if environ is None else environ
    return env.get(ENV_VAR) or None


async def open_pool(dsn: str, *, max_size: int = 4, migrate_schema: bool = True) -> Any:
    """An asyncpg pool on an up-to-date schema.

    `min_size=0`: after a database restart the pool reconnects on demand instead of
    handing out dead connections it opened at start-up.
    """
    if migrate_schema:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    return await asyncpg.create_pool(dsn, min_size=0, max_size=max_size, timeout=30)


def _without_password(text: str, dsn: str) -> str:
    """`text` (an error message) with the DSN's password, if it appears, masked."""
    with contextlib.suppress(ValueError):
        password = urlsplit(dsn).password
        if password:
            text = text.replace(password, "***")
    return text


class ArchiveUnavailable(ConnectionError):
    """The archive database has not been reached (and its schema migrated) yet.

    A ConnectionError, so every writer treats it as the transient failure it is: keep
    the rows in its bounded buffer and try again later."""


class DeferredPool:
    """The operator's pool: usable once the database was reached and migrated.

    An operator must run Workflows while PostgreSQL is down, so opening the archive never
    waits for the database: one try at start, then a background task tries again with
    backoff until it gets through. Until then `acquire` raises `ArchiveUnavailable` and
    the writers buffer what they would have written (bounded, dropping the oldest).
    """

    def __init__(self, dsn: str, *, max_size: int = 4, max_backoff_seconds: float = 30.0) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self._max_backoff = max_backoff_seconds
        self._pool: Any = None
        self._task: asyncio.Task[None] | None = None
        self.problem: str | None = "not connected yet"
        """Why the archive is not usable, for /readyz and logs (never the DSN itself)."""

    @property
    def connected(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        """One try now; if it fails, keep trying in the background."""
        if not await self._try():
            log.warning(
                "archive: database unreachable (%s); workflows run, archive writes are "
                "buffered in bounded memory until it answers",
                self.problem,
            )
            self._task = asyncio.create_task(self._retry(), name="shoal-archive-connect")

    async def _try(self) -> bool:
        try:
            self._pool = await open_pool(self._dsn, max_size=self._max_size)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.problem = _without_password(f"{type(err).__name__}: {err}", self._dsn)[:300]
            return False
        self.problem = None
        return True

    async def _retry(self) -> None:
        backoff = 1.0
        while not await self._try():
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)
        log.info("archive: database reached and migrated; buffered writes follow")

    def acquire(self, timeout: float | None = None) -> Any:
        if self._pool is None:
            raise ArchiveUnavailable(f"archive database unavailable: {self.problem}")
        return self._pool.acquire(timeout=timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pool is not None:
            await self._pool.close()


class using:
    """`async with` a connection, from a pool (acquired) or a connection (as is)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self._ctx: Any = None

    async def __aenter__(self) -> Any:
        if hasattr(self.db, "acquire"):
            self._ctx = self.db.acquire()
            return await self._ctx.__aenter__()
        return self.db

    async def __aexit__(self, *exc: object) -> None:
        if self._ctx is not None:
            await self._ctx.__aexit__(*exc)
