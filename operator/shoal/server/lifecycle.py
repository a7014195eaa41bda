"""What the server holds beyond the request (the archive pool, the shared watch), closed
in one place when it stops."""

from __future__ import annotations

from fastapi import FastAPI

from shoal.server.archive_db import close_archive

__all__ = ["shutdown"]


async def shutdown(app: FastAPI) -> None:
    await close_archive(app)
