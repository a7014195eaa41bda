"""Lines of untrusted output with a bound on their length, whatever the chunking.

A child process (`shoal run`) or a pod's log stream (the operator) may print a line of
any length, or one that never ends. Reading it whole would hold it all in memory; here
a line over the limit is yielded once, cut, as soon as its first `limit` bytes are in,
and the rest of it, up to its newline, is read and dropped. The source is always
drained, so a writer never blocks on a full pipe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

CUT_NOTE = " ...[cut: line longer than {limit} bytes]"
"""Appended (formatted) to a cut line where it is shown or stored."""


async def bounded_lines(
    chunks: AsyncIterator[bytes], limit: int
) -> AsyncIterator[tuple[bytes, bool]]:
    """Yield ``(line, cut)`` until the chunks end, never holding more than ``limit``
    bytes of a line. Lines keep their newline; a cut line has none."""
    buffer = bytearray()
    dropping = False
    async for chunk in chunks:
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            if dropping:
                dropping = False
            elif end - start > limit:
                yield bytes(buffer[start : start + limit]), True
            else:
                yield bytes(buffer[start : end + 1]), False
            start = end + 1
        del buffer[:start]
        if dropping:
            buffer.clear()
        elif len(buffer) > limit:
            yield bytes(buffer[:limit]), True
            buffer.clear()
            dropping = True
    if buffer and not dropping:
        yield bytes(buffer), False
