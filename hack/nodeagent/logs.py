"""Container logs in the CRI file format, and reading them the way the kubelet does.

Each line on disk is ``<RFC3339Nano time> <stdout|stderr> <F|P> <content>``: F ends a
line, P is a fragment (a line longer than 16 KiB, or output without a final newline).
Followers are woken by the writer directly (same process), never by polling.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 16 * 1024


def rfc3339nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_time(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with up to nanosecond precision."""
    value = value.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    main, _, rest = value.partition(".")
    if rest:
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        stamp = dt.datetime.fromisoformat(main + rest)
        return stamp.timestamp() + int(digits[:9].ljust(9, "0")) / 1e9
    return dt.datetime.fromisoformat(main).timestamp()


class LogWriter:
    """Appends one container run's stdout/stderr to its log file and wakes followers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab", buffering=0)
        self._pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self._changed = asyncio.Event()
        self.closed = False

    def _record(self, stream: str, tag: str, content: bytes) -> None:
        self._file.write(f"{rfc3339nano()} {stream} {tag} ".encode() + content + b"\n")

    def write(self, stream: str, data: bytes) -> None:
        buf = self._pending[stream] + data
        while True:
            cut = buf.find(b"\n")
            if cut < 0:
                break
            line, buf = buf[:cut], buf[cut + 1 :]
            while len(line) > MAX_LINE:
                self._record(stream, "P", line[:MAX_LINE])
                line = line[MAX_LINE:]
            self._record(stream, "F", line)
        while len(buf) > MAX_LINE:
            self._record(stream, "P", buf[:MAX_LINE])
            buf = buf[MAX_LINE:]
        self._pending[stream] = buf
        self._notify()

    def close(self) -> None:
        """End of the run: flush fragments (as P, like the CRI) and release followers."""
        for stream, buf in self._pending.items():
            if buf:
                self._record(stream, "P", buf)
        self._pending = {"stdout": b"", "stderr": b""}
        self._file.close()
        self.closed = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def next_change(self) -> asyncio.Event:
        """The event the next write (or the close) sets, taken now: a follower that took
        it before reading cannot miss a write made while it sends what it read. Once the
        run is closed, an event already set."""
        if self.closed:
            done = asyncio.Event()
            done.set()
            return done
        return self._changed


@dataclass
class Record:
    time: str
    stream: str
    partial: bool
    content: bytes


def parse_records(data: bytes) -> tuple[list[Record], int]:
    """Records in ``data`` and how many bytes they used (a torn last line is left)."""
    records: list[Record] = []
    used = 0
    while True:
        end = data.find(b"\n", used)
        if end < 0:
            return records, used
        line = data[used:end]
        used = end + 1
        parts = line.split(b" ", 3)
        if len(parts) < 4:
            parts += [b""] * (4 - len(parts))
        records.append(Record(parts[0].decode(), parts[1].decode(), parts[2] == b"P", parts[3]))


@dataclass
class LogOptions:
    follow: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since: float | None = None  # epoch seconds
    limit_bytes: int | None = None
    stream: str = "All"  # All | Stdout | Stderr


def _tail(records: list[Record], lines: int) -> list[Record]:
    if lines <= 0:
        return []
    count = 0
    for index in range(len(records) - 1, -1, -1):
        if not records[index].partial:
            count += 1
            if count > lines:
                return records[index + 1 :]
    return records


def _open_if_exists(path: Path) -> BinaryIO | None:
    try:
        return path.open("rb")
    except FileNotFoundError:
        return None


async def read_logs(path: Path, writer: LogWriter | None, opts: LogOptions) -> AsyncIterator[bytes]:
    """Yield the formatted log of one container run, following it if asked.

    Following ends when the run's writer is closed (the container exited) and the
    file has been read to its end, as the kubelet does.
    """
    wanted = {"All": None, "Stdout": "stdout", "Stderr": "stderr"}.get(opts.stream)
    remaining = opts.limit_bytes
    first = True
    line_start = {"stdout": True, "stderr": True}
    pending = b""
    handle = None
    try:
        while True:
            # Take the "changed" future before reading, so no write can slip between.
            # (The event itself, not a task that would only look it up when first run.)
            change = writer.next_change() if writer and opts.follow else None
            waiter = asyncio.ensure_future(change.wait()) if change is not None else None
            try:
                if handle is None:
                    handle = _open_if_exists(path)
                data = pending + (handle.read() if handle is not None else b"")
                records, used = parse_records(data)
                pending = data[used:]
                if wanted:
                    records = [r for r in records if r.stream == wanted]
                if first and opts.tail_lines is not None:
                    records = _tail(records, opts.tail_lines)
                first = False
                out = bytearray()
                for record in records:
                    if opts.since is not None and parse_time(record.time) < opts.since:
                        continue
                    if opts.timestamps and line_start[record.stream]:
                        out += record.time.encode() + b" "
                    out += record.content
                    if not record.partial:
                        out += b"\n"
                    line_start[record.stream] = not record.partial
                if out:
                    if remaining is not None:
                        out = out[:remaining]
                        remaining -= len(out)
                    yield bytes(out)
                    if remaining is not None and remaining <= 0:
                        return
                if waiter is None or (writer is not None and writer.closed and not used):
                    return
                await waiter
            finally:
                if waiter is not None and not waiter.done():
                    waiter.cancel()
    finally:
        if handle is not None:
            handle.close()
