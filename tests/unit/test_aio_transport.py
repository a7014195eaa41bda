"""The operator's HTTP client takes its proxy from the environment as httpx did, and
sends nothing else the environment holds: a `.netrc` entry for the API server's host is
never sent beside (or instead of) the operator's own credentials."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from shoal.kube.aio_transport import env_proxy
from tests.unit.kube_server import api_serving


def test_the_proxy_comes_from_the_environment_unless_no_proxy_exempts_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("https://kube.example:6443") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert env_proxy("https://kube.example:6443") == "http://proxy.example:3128"
    monkeypatch.setenv("NO_PROXY", ".example")
    assert env_proxy("https://kube.example:6443") is None


async def test_netrc_credentials_are_never_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"items": []})

    async with api_serving(handler) as api:
        api.creds = replace(api.creds, token=None)  # client certificates: no token
        await api.get("/api/v1/namespaces/a/pods")
        await api.get("/api/v1/namespaces/a/pods")
    assert seen == [None, None]
