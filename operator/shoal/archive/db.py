"""Finding and opening the archive database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import asyncpg

from shoal.archive.schema import migrate

ENV_VAR = "SHOAL_DATABASE_URL"


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
