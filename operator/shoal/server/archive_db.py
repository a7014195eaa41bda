"""The server's connection to the PostgreSQL archive, when it has one.

Opened on first use (the API serves live objects while the database is down), read
only (the operator owns the schema). Neither the DSN nor a database error's text ever
reaches a response or a log line: errors become `archive-unavailable`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request

from shoal.server.errors import ApiProblem

__all__ = ["ArchiveHandle", "archive_handle", "archive_pool", "close_archive", "query"]

LOG = logging.getLogger("shoal.server.archive")
CONNECT_SECONDS = 10.0
T = TypeVar("T")


class ArchiveHandle:
    """A lazily opened, small asyncpg pool on the archive."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def pool(self) -> Any:
        async with self._lock:
            if self._pool is None:
                import asyncpg

                try:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=0, max_size=4, timeout=CONNECT_SECONDS
                    )
                except Exception as err:
                    LOG.warning("archive unreachable (%s)", type(err).__name__)
                    raise unavailable() from None
            return self._pool

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()


def unavailable() -> ApiProblem:
    return ApiProblem.of(503, "archive-unavailable", "the archive database cannot be reached")


def archive_handle(app: FastAPI) -> ArchiveHandle | None:
    """The application's archive, or None when the server was given none."""
    handle: ArchiveHandle | None = getattr(app.state, "archive", None)
    if handle is None:
        dsn = app.state.cluster.archive_dsn
        if not dsn:
            return None
        handle = ArchiveHandle(dsn)
        app.state.archive = handle
    return handle


async def archive_pool(request: Request) -> Any:
    """FastAPI dependency: the archive's pool, or a 404 saying there is no archive."""
    handle = archive_handle(request.app)
    if handle is None:
        raise ApiProblem.of(
            404,
            "archive-not-configured",
            "this server has no archive (start it with --database-url or SHOAL_DATABASE_URL)",
        )
    return await handle.pool()


async def query(run: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """One archive read; a database failure is a 503 without the database's own words
    (they can hold the DSN)."""
    try:
        return await run(*args, **kwargs)
    except ApiProblem:
        raise
    except Exception as err:
        LOG.warning("archive read failed (%s)", type(err).__name__)
        raise unavailable() from None


async def close_archive(app: FastAPI) -> None:
    handle: ArchiveHandle | None = getattr(app.state, "archive", None)
    if handle is not None:
        await handle.aclose()
