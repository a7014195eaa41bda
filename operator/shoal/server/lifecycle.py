"""What the server holds beyond the request (the archive pool, the shared watch), closed
in one place when it stops."""

from __future__ import annotations

from fastapi import FastAPI

from shoal.server.archive_db import close_archive

__all__ = ["shutdown"]


async def shutdown(app: FastAPI) -> None:
    informer = getattr(app.state, "informer", None)
    if informer is not None:
        await informer.aclose()
    await close_archive(app)
