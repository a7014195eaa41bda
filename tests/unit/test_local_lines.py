"""The line cutter that reads children's pipes (and, wrapped, a pod's log stream): every
line comes out, none longer than the limit, however the bytes are chunked, and an
endless line costs bounded memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shoal.linesplit import LineCutter, bounded_lines


def lines(chunks: list[bytes], limit: int = 8) -> list[tuple[bytes, bool]]:
    cutter = LineCutter(limit)
    out = [item for chunk in chunks for item in cutter.feed(chunk)]
    return out + cutter.finish()


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_lines_come_out_whole_whatever_the_chunking(size: int) -> None:
    data = b"a\nbb\n\nexactly8\nlast"
    assert lines(chunked(data, size)) == [
        (b"a\n", False),
        (b"bb\n", False),
        (b"\n", False),
        (b"exactly8\n", False),  # 8 bytes of text: within the limit
        (b"last", False),
    ]


@pytest.mark.parametrize("size", [1, 4, 64])
def test_a_long_line_is_cut_once_and_the_next_line_is_read(size: int) -> None:
    data = b"0123456789abcdef\nnext\n"
    assert lines(chunked(data, size)) == [(b"01234567", True), (b"next\n", False)]


def test_an_endless_line_is_cut_as_soon_as_the_limit_is_reached() -> None:
    cutter = LineCutter(8)
    # no newline, no end: the writer is still going, and only 8 bytes are kept
    assert cutter.feed(b"x" * 100) == [(b"xxxxxxxx", True)]
    assert cutter.feed(b"x" * 100) == []
    assert cutter.feed(b"x\ny\n") == [(b"y\n", False)]


def test_a_cut_line_without_newline_at_eof_yields_nothing_more() -> None:
    assert lines([b"y" * 50]) == [(b"y" * 8, True)]


def test_the_async_wrapper_yields_the_same_lines() -> None:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunked(b"a\n0123456789\nend", 3):
            yield chunk

    async def collect() -> list[tuple[bytes, bool]]:
        return [item async for item in bounded_lines(source(), 8)]

    assert asyncio.run(collect()) == [(b"a\n", False), (b"01234567", True), (b"end", False)]
