"""A pod's log as the operator reads it: no line, however long, is held whole, and a
connection that breaks mid-stream is an `ApiError` the log followers already handle."""

from __future__ import annotations

import pytest
from aiohttp import web

from shoal.kube import api as api_module
from shoal.kube.api import ApiError, KubeApi
from tests.unit.kube_server import api_serving

LOG = "/api/v1/namespaces/a/pods/p/log"


async def test_a_huge_log_line_is_cut_and_the_next_lines_still_arrive() -> None:
    huge = b"x" * (3 * 1024 * 1024)
    parts = [huge[i : i + 65536] for i in range(0, len(huge), 65536)] + [b"\nok\r\nlast"]

    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for part in parts:
            await resp.write(part)
        await resp.write_eof()
        return resp

    async with api_serving(trickle) as api:
        got = [line async for line in api.lines(LOG, follow="true")]
    limit = api_module.MAX_LOG_LINE_BYTES
    assert len(got) == 3
    assert got[0] == "x" * limit + f" ...[cut: line longer than {limit} bytes]"
    assert got[1:] == ["ok", "last"]


async def test_a_stream_cut_mid_line_is_an_unreachable_api_error() -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "100"})
        await resp.prepare(request)
        await resp.write(b"first\nhalf a li")
        assert request.transport is not None
        request.transport.close()  # the connection drops before the promised 100 bytes
        return resp

    seen: list[str] = []

    async def read(api: KubeApi) -> None:
        async for line in api.short_lines(LOG):
            seen.append(line)

    async with api_serving(broken) as api:
        with pytest.raises(ApiError) as caught:
            await read(api)
    assert caught.value.status == 0
    assert seen == ["first"]


async def test_a_refused_log_read_names_the_api_servers_reason() -> None:
    async def gone(request: web.Request) -> web.Response:
        body = b'{"kind":"Status","reason":"NotFound","message":"pods \\"p\\" not found"}'
        return web.Response(status=404, body=body, content_type="application/json")

    async with api_serving(gone) as api:
        with pytest.raises(ApiError) as caught:
            _ = [line async for line in api.lines(LOG, follow=True)]
        assert api.routes.counts[("GET", "pods/{name}/log")] == 1
    assert (caught.value.status, caught.value.reason) == (404, "NotFound")
    assert 'pods "p" not found' in str(caught.value)
