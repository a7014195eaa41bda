"""The local run's logs: one file per node, every attempt delimited, nothing per item.

A 10,000-item fan-out leaves one `<node>.log` in the work directory, not 10,000 files.
Each attempt opens with a `--- item I attempt A started ---` line and closes with a
`--- item I attempt A exited N ---` line; while items run side by side their lines
interleave, so in a fan-out's log every line carries its `[item I #A]` prefix.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = ["AttemptLog", "NodeLogs"]


_last_stamp: tuple[int, str] = (-1, "")
"""The second of the last attempt's start and its text: a fan-out formats it once a second,
not per item."""


def _stamp() -> str:
    """The current local time to the second, as an attempt's opening line shows it."""
    global _last_stamp
    now = time.time()
    second = int(now)
    if second != _last_stamp[0]:
        _last_stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)))
    return _last_stamp[1]


class NodeLogs:
    """The open log file of each node that has run an attempt, in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._files: dict[str, TextIO] = {}

    def path(self, node: str) -> Path:
        return self.workdir / f"{node}.log"

    def attempt(self, node: str, index: int, attempt: int, fan_out: bool) -> AttemptLog:
        """The log of one attempt; its node's file is opened (appending) at its first write
        or `begin`, so the executor can start the child first and touch files after."""
        return AttemptLog(functools.partial(self._file, node), index, attempt, fan_out)

    def _file(self, node: str) -> TextIO:
        file = self._files.get(node)
        if file is None:
            file = self._files[node] = self.path(node).open("a", encoding="utf-8")
        return file

    def flush(self, node: str) -> None:
        """Write out what the node's attempts wrote so far (`shoal run --ui` reads it live)."""
        file = self._files.get(node)
        if file is not None and not file.closed:
            file.flush()

    def close(self, node: str) -> None:
        """The node is finished: no attempt of it writes again."""
        file = self._files.pop(node, None)
        if file is not None:
            file.close()

    def close_all(self) -> None:
        for node in list(self._files):
            self.close(node)


class AttemptLog:
    """What one attempt writes to its node's log, delimited and (in a fan-out) prefixed."""

    def __init__(
        self, open_file: Callable[[], TextIO], index: int, attempt: int, fan_out: bool
    ) -> None:
        self._open_file = open_file
        self._file: TextIO | None = None
        self._name = f"item {index} attempt {attempt}" if fan_out else f"attempt {attempt}"
        self._prefix = f"[item {index} #{attempt}] " if fan_out else ""
        self._line_open = False
        self._stamp = _stamp()

    def begin(self) -> None:
        """Write the attempt's opening line (done by its first write otherwise)."""
        if self._file is None:
            self._file = self._open_file()
            self._write(f"--- {self._name} started {self._stamp} ---\n")

    def write(self, text: str) -> None:
        """One line of output (its newline included, but for an unterminated last line)."""
        if self._line_open:  # the previous write lacked its newline: end it first
            self._write("\n")
        self._write(self._prefix + text)
        self._line_open = not text.endswith("\n")

    def end(self, outcome: str) -> None:
        """Close the attempt's section and flush, so the file is complete between attempts."""
        if self._line_open:
            self._write("\n")
            self._line_open = False
        self._write(f"--- {self._name} {outcome} ---\n")
        if self._file is not None and not self._file.closed:
            self._file.flush()

    def _write(self, text: str) -> None:
        if self._file is None:
            self.begin()
        assert self._file is not None
        if not self._file.closed:  # a child abandoned on a forced stop may outlive its node
            self._file.write(text)
