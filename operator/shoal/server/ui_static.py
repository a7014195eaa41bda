"""The web dashboard's files: `/` is its page, `/ui/...` its scripts and styles.

They ship inside the package (`shoal/server/ui/`); the third-party layout library in
`ui/vendor/` is copied there from the npm registry by `make ui` (pinned in
ui/package-lock.json), so nothing is fetched from a CDN at run time. The page itself is
static: it holds no token and no data, and reads everything through `/api/v1` with the
token the user typed in (docs/dashboard.md).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["LAYOUT_LIBRARY", "UI_DIR", "mount_ui", "ui_built"]

UI_DIR = Path(__file__).resolve().parent / "ui"
LAYOUT_LIBRARY = UI_DIR / "vendor" / "dagre.esm.js"
"""The DAG layout library (`@dagrejs/dagre`), put there by `make ui`."""


def ui_built() -> bool:
    """Whether `make ui` has put the layout library in place (else the page says so)."""
    return LAYOUT_LIBRARY.is_file()


def mount_ui(app: FastAPI) -> None:
    """Serve the dashboard beside the API (which stays under `/api/v1`)."""
    app.mount("/ui", StaticFiles(directory=UI_DIR, check_dir=False), name="ui")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(UI_DIR / "index.html", media_type="text/html")
