"""A pod's log as the operator reads it: no line, however long, is held whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from shoal.kube import api as api_module
from shoal.kube.api import Credentials, KubeApi


class Trickle(httpx.AsyncByteStream):
    """A log body arriving in small chunks: a 3 MiB line, then two ordinary ones."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


async def test_a_huge_log_line_is_cut_and_the_next_lines_still_arrive() -> None:
    huge = b"x" * (3 * 1024 * 1024)
    body = Trickle([huge[i : i + 65536] for i in range(0, len(huge), 65536)] + [b"\nok\r\nlast"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body)

    api = KubeApi(Credentials("https://kube.invalid", False, "t", None))
    api._streams = httpx.AsyncClient(
        base_url="https://kube.invalid", transport=httpx.MockTransport(handler)
    )
    try:
        got = [line async for line in api.lines("/api/v1/namespaces/a/pods/p/log")]
    finally:
        await api.close()
    limit = api_module.MAX_LOG_LINE_BYTES
    assert len(got) == 3
    assert got[0] == "x" * limit + f" ...[cut: line longer than {limit} bytes]"
    assert got[1:] == ["ok", "last"]
