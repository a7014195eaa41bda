"""A failed attempt in a few readable lines: the error line and the frame that raised it.

The worker sends a Python failure as an `error` protocol message whose `traceback` is the
whole formatted traceback; on screen a user needs where it broke and why, not the
escaped JSON line, so this reads the innermost frame and the exception line out of it.
"""

from __future__ import annotations

import os

from shoal.core.lazy_re import LazyPattern  # compiled on first use: start-up
from shoal_worker.records import Record

__all__ = ["Failure", "failing_frame", "failure_of", "first_line"]

_FRAME = LazyPattern(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')
_CARETS = LazyPattern(r"^[\s^~]+$")


class Failure(Record):
    """What a failed attempt reported: `error` is `Type: message`, `at` the failing frame."""

    error: str
    at: str | None = None
    """`file:line in function: source line`, when a traceback came with the error."""

    def lines(self) -> list[str]:
        return [self.error] + ([f"at {self.at}"] if self.at else [])


def first_line(text: str, limit: int = 300) -> str:
    """The first line of a message, shortened: the rest is in the log file."""
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _shown_path(path: str) -> str:
    """Relative to the current directory when below it, else the file's name: short enough
    for a table cell (the attempt's log keeps the whole traceback)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        relative = ".."
    return os.path.basename(path) if relative.startswith("..") else relative


def failing_frame(traceback: str) -> str | None:
    """`file:line in function: source` of the innermost frame of a formatted traceback."""
    lines = traceback.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        found = _FRAME.match(lines[i])
        if found is None:
            continue
        where = f"{_shown_path(found['file'])}:{found['line']} in {found['func'].strip()}"
        source = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if source and not _FRAME.match(lines[i + 1]) and not _CARETS.match(lines[i + 1]):
            where += f": {source}"
        return where
    return None


def failure_of(message: str, error_type: str | None, traceback: str | None) -> Failure:
    """A `Failure` from the fields of an `error` protocol message."""
    text = first_line(message)
    error = f"{error_type}: {text}" if error_type and error_type != "UsageError" else text
    return Failure(error.removesuffix(": "), failing_frame(traceback) if traceback else None)
