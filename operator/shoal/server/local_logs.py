"""A local run's node logs (local/logs.py's files) read as the API's `LogPage`.

`shoal run` keeps one `<node>.log` per node: each attempt between a `--- [item I ]attempt
A started ... ---` and a `--- ... <outcome> ---` line, a fan-out's lines prefixed
`[item I #A] `. This splits such a file back into attempts, so `shoal run --ui` answers
the node log route with the shapes `shoal server` uses (one "pod" per item attempt).
A job's own output is untrusted: a line that mimics a delimiter can only mislabel lines
of its own node, and every read is bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from shoal.server.logs import MAX_LINES, LogLine, LogPage

__all__ = ["MAX_READ_BYTES", "AttemptKey", "NodeLog", "log_page", "parse_log", "read_tail"]

MAX_READ_BYTES = 16 * 1024 * 1024
"""Read at most the last this many bytes of a node's log (a long fan-out's)."""
_MARK = re.compile(r"^--- (?:item (\d+) )?attempt (\d+) (.*) ---$")
_PREFIX = re.compile(r"^\[item (\d+) #(\d+)\] ")

AttemptKey = tuple[int, int]
"""(item, attempt)."""


@dataclass
class NodeLog:
    """One node's log split by attempt, in the order attempts started."""

    lines: dict[AttemptKey, list[str]] = field(default_factory=dict)
    ended: set[AttemptKey] = field(default_factory=set)
    current: AttemptKey | None = None
    """The attempt of a plain node that unprefixed lines belong to."""

    def feed(self, line: str, fan_out: bool) -> tuple[AttemptKey, str] | None:
        """Take one complete line; returns the (attempt, text) of a log line, or None for
        a delimiter (or a line before any attempt)."""
        mark = _MARK.match(line)
        if mark is not None:
            key = (int(mark.group(1) or 0), int(mark.group(2)))
            self.lines.setdefault(key, [])
            if mark.group(3).startswith("started"):
                self.current = key
            else:
                self.ended.add(key)
            return None
        if fan_out:
            prefix = _PREFIX.match(line)
            if prefix is None:
                return None
            key = (int(prefix.group(1)), int(prefix.group(2)))
            line = line[prefix.end() :]
        elif self.current is None:
            return None
        else:
            key = self.current
        self.lines.setdefault(key, []).append(line)
        return key, line


def parse_log(text: str, fan_out: bool) -> NodeLog:
    log = NodeLog()
    for line in text.splitlines():
        log.feed(line, fan_out)
    return log


def read_tail(path: Path, limit: int = MAX_READ_BYTES) -> tuple[str, int, bool]:
    """The file's complete lines (at most its last `limit` bytes), the offset after the
    last complete line, and whether the start was cut off."""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        start = max(0, size - limit)
        file.seek(start)
        data = file.read(size - start)
    if start:
        data = data[data.find(b"\n") + 1 :]
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", "replace"), size - len(data) + end, bool(start)


def chosen(log: NodeLog, item: int | None, attempt: int | None) -> list[AttemptKey]:
    """The attempts a request reads: the latest of each item unless `attempt`, by item."""
    latest: dict[int, AttemptKey] = {}
    for key in log.lines:
        if item is not None and key[0] != item:
            continue
        if attempt is not None and key[1] != attempt:
            continue
        if key[0] not in latest or key[1] > latest[key[0]][1]:
            latest[key[0]] = key
    return [latest[i] for i in sorted(latest)]


def log_page(
    node: str, text: str, fan_out: bool, item: int | None, attempt: int | None, tail: int
) -> LogPage:
    log = parse_log(text, fan_out)
    keys = chosen(log, item, attempt)
    lines: list[LogLine] = []
    for key in keys:
        for text_line in log.lines[key][-tail:][: MAX_LINES - len(lines)]:
            lines.append(
                LogLine(pod=pod_name(node, key), item=key[0], attempt=key[1], text=text_line)
            )
        if len(lines) >= MAX_LINES:
            return LogPage(lines=lines, pods=len(keys), truncated=True)
    return LogPage(lines=lines, pods=len(keys))


def pod_name(node: str, key: AttemptKey) -> str:
    """What stands for a pod locally: the node, item and attempt."""
    return f"local:{node}:{key[0]}:{key[1]}"
