"""How the operator's API client reads answers, counts requests and holds connections.

What a tenant may have written is still decoded with the depth cut; what nobody reads
(a deletion's answer, the status patch's) is not decoded at all; a Job the operator
created decodes even when nested past the C decoder's reach. Requests are counted by
verb and route with names left out. Log streams and watches do not take the short
requests' connections: a Job is still created while every one of them is held.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from shoal.core.jsonbounds import CUT
from shoal.kube import api as api_module
from shoal.kube.api import Credentials, KubeApi
from shoal.kube.api_routes import MAX_ROUTES, OTHER, RouteCounter, route
from tests.unit.kube_server import api_answering

JOBS = "/apis/batch/v1/namespaces/a/jobs"


def nested(depth: int) -> bytes:
    return b'{"metadata": {"uid": "u1"}, "spec": ' + b"[" * depth + b"]" * depth + b"}"


async def test_a_read_of_tenant_data_is_still_cut_at_the_decode_depth() -> None:
    async with api_answering(nested(5000)) as api:
        got = await api.get("/apis/shoal.dev/v1alpha1/namespaces/a/workflows/w")
    assert CUT in json.dumps(got)


async def test_a_created_job_decodes_even_past_the_c_decoders_depth() -> None:
    async with api_answering(nested(100_000), status=201) as api:
        got = await api.create(JOBS, {"metadata": {"name": "j"}}, reply="own")
    assert got is not None
    assert got["metadata"]["uid"] == "u1"


async def test_answers_nobody_reads_are_not_decoded() -> None:
    async with api_answering(b"this is not JSON") as api:  # decoding it would raise
        assert await api.delete(f"{JOBS}/j") is True
        await api.delete_collection(JOBS, "shoal.dev/workflow-uid=u")
        patched = await api.merge_patch(f"{JOBS}/j/status", {"status": {}}, reply="ignored")
        with pytest.raises(json.JSONDecodeError):
            await api.merge_patch(f"{JOBS}/j/status", {"status": {}})  # read: decoded
    assert patched == {}


def test_routes_leave_out_namespaces_and_names() -> None:
    assert route("post", JOBS) == ("POST", "jobs")
    assert route("GET", "/api/v1/namespaces/a/pods/p-1/log") == ("GET", "pods/{name}/log")
    assert route("PATCH", "/apis/shoal.dev/v1alpha1/namespaces/a/workflows/w/status") == (
        "PATCH",
        "workflows/{name}/status",
    )
    assert route("GET", "/api/v1/pods?watch=true", watch=True) == ("WATCH", "pods")
    assert route("GET", "/api/v1/namespaces/a") == ("GET", "namespaces/{name}")
    assert route("GET", "/healthz") == ("GET", "other")


def test_the_route_count_is_bounded() -> None:
    counter = RouteCounter()
    for i in range(MAX_ROUTES + 10):
        counter.add("GET", f"/apis/g/v1/kind{i}")
    assert len(counter.counts) == MAX_ROUTES + 1  # the rest under one label
    assert counter.counts[OTHER] == 10


async def test_log_streams_do_not_take_the_short_requests_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api_module, "MAX_CONNECTIONS", 2)
    streams_open = 0
    all_open, release = asyncio.Event(), asyncio.Event()

    async def log(request: web.Request) -> web.StreamResponse:
        nonlocal streams_open
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"started\n")
        streams_open += 1
        if streams_open == api_module.MAX_CONNECTIONS:
            all_open.set()
        await release.wait()
        return resp

    async def job(request: web.Request) -> web.Response:
        return web.json_response({"metadata": {"name": "j", "uid": "u"}}, status=201)

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/a/pods/{name}/log", log)
    app.router.add_post(JOBS, job)
    server = TestServer(app)
    await server.start_server()
    api = KubeApi(Credentials(str(server.make_url("")), False, None, None))

    async def follow(pod: str) -> list[str]:
        return [line async for line in api.lines(f"/api/v1/namespaces/a/pods/{pod}/log")]

    followers = [asyncio.create_task(follow(f"p{i}")) for i in range(api_module.MAX_CONNECTIONS)]
    try:
        async with asyncio.timeout(10):
            await all_open.wait()  # every connection the short requests had is a stream now
            created = await api.create(JOBS, {"metadata": {"name": "j"}}, reply="own")
        assert created is not None
        assert created["metadata"]["uid"] == "u"
        release.set()
        async with asyncio.timeout(10):
            assert await asyncio.gather(*followers) == [["started"]] * len(followers)
    finally:
        release.set()
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        await api.close()
        await server.close()
