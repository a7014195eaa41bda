"""The local executor's line reader: every line comes out, none longer than the limit,
however the bytes are chunked, and an endless line costs bounded memory."""

from __future__ import annotations

import asyncio

import pytest

from shoal.local import process
from shoal.local.process import bounded_lines


async def read_all(chunks: list[bytes], limit: int) -> list[tuple[bytes, bool]]:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return [item async for item in bounded_lines(reader, limit)]


def lines(chunks: list[bytes], limit: int = 8) -> list[tuple[bytes, bool]]:
    return asyncio.run(read_all(chunks, limit))


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_lines_come_out_whole_whatever_the_chunking(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "READ_CHUNK_BYTES", size)
    data = b"a\nbb\n\nexactly8\nlast"
    assert lines([data]) == [
        (b"a\n", False),
        (b"bb\n", False),
        (b"\n", False),
        (b"exactly8\n", False),  # 8 bytes of text: within the limit
        (b"last", False),
    ]


@pytest.mark.parametrize("size", [1, 4, 64])
def test_a_long_line_is_cut_once_and_the_next_line_is_read(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "READ_CHUNK_BYTES", size)
    assert lines([b"0123456789abcdef\nnext\n"]) == [(b"01234567", True), (b"next\n", False)]


def test_an_endless_line_is_cut_as_soon_as_the_limit_is_reached() -> None:
    async def scenario() -> tuple[bytes, bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"x" * 100)  # no newline, no EOF: the writer is still going
        return await anext(bounded_lines(reader, 8))

    assert asyncio.run(scenario()) == (b"xxxxxxxx", True)


def test_a_cut_line_without_newline_at_eof_yields_nothing_more() -> None:
    assert lines([b"y" * 50]) == [(b"y" * 8, True)]
