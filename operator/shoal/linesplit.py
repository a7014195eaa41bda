"""Lines of untrusted output with a bound on their length, whatever the chunking.

A child process (`shoal run`) or a pod's log stream (the operator) may print a line of
any length, or one that never ends. Reading it whole would hold it all in memory; here
a line over the limit is yielded once, cut, as soon as its first `limit` bytes are in,
and the rest of it, up to its newline, is read and dropped. The source is always
drained, so a writer never blocks on a full pipe.

`LineCutter` does the cutting for a caller that is handed chunks (the local executor
reads its children's pipes in event-loop callbacks); `bounded_lines` wraps it for a
caller that iterates chunks (a pod's log stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

__all__ = ["CUT_NOTE", "LineCutter", "bounded_lines"]

CUT_NOTE = " ...[cut: line longer than {limit} bytes]"
"""Appended (formatted) to a cut line where it is shown or stored."""


class LineCutter:
    """Chunks in, ``(line, cut)`` pairs out, never holding more than ``limit`` bytes of a
    line. Lines keep their newline; a cut line has none."""

    __slots__ = ("_buffer", "_dropping", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._dropping = False

    def feed(self, chunk: bytes) -> list[tuple[bytes, bool]]:
        """The lines this chunk completes (a line over the limit: its first `limit` bytes)."""
        out: list[tuple[bytes, bool]] = []
        buffer, limit = self._buffer, self.limit
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            if self._dropping:
                self._dropping = False
            elif end - start > limit:
                out.append((bytes(buffer[start : start + limit]), True))
            else:
                out.append((bytes(buffer[start : end + 1]), False))
            start = end + 1
        del buffer[:start]
        if self._dropping:
            buffer.clear()
        elif len(buffer) > limit:
            out.append((bytes(buffer[:limit]), True))
            buffer.clear()
            self._dropping = True
        return out

    def finish(self) -> list[tuple[bytes, bool]]:
        """The unterminated last line, if any, once the source has ended."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return [(rest, False)] if rest and not self._dropping else []


async def bounded_lines(
    chunks: AsyncIterator[bytes], limit: int
) -> AsyncIterator[tuple[bytes, bool]]:
    """Yield ``(line, cut)`` until the chunks end, never holding more than ``limit``
    bytes of a line. Lines keep their newline; a cut line has none."""
    cutter = LineCutter(limit)
    async for chunk in chunks:
        for item in cutter.feed(chunk):
            yield item
    for item in cutter.finish():
        yield item
