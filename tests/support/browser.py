"""Debian's headless chromium driven by Playwright, for the dashboard's tests.

Never a downloaded browser: `make browser` installs Debian's `chromium`, and Playwright is
pointed at that executable. Missing, the tests fail under CI=true and skip elsewhere.
With SHOAL_UPDATE_SCREENSHOTS=1, `screenshot` writes docs/images/NAME.png (the docs show
them); otherwise nothing is written in the tree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .plugin import unavailable
from .procs import MissingPrerequisite

__all__ = ["CHROMIUM", "SCREENSHOTS", "chromium", "screenshot"]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless chromium (a Playwright `Browser`), closed on exit."""
    if not CHROMIUM.exists():
        unavailable(
            "chromium", MissingPrerequisite("run `make browser` (apt-get install chromium)")
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        unavailable("playwright", MissingPrerequisite(str(err)))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> None:
    """docs/images/NAME.png from `page`, only when SHOAL_UPDATE_SCREENSHOTS=1."""
    if os.environ.get("SHOAL_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
