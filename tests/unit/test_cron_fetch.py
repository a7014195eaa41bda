"""The poll request: body limits, deadline, no redirects, the headers Secret (no network:
httpx's MockTransport answers in process)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from shoal.api.common import KeyRef
from shoal.cron.fetch import Fetcher, HeadersError, load_headers
from shoal.cron.poll import Failure, Outcome, Response
from shoal.kube.api import ApiError, KubeApi

URL = "https://feed.example/x"


def fetch(handler: Any, *, deadline: float = 5, max_bytes: int = 100, **headers: str) -> Outcome:
    async def go() -> Outcome:
        fetcher = Fetcher(httpx.MockTransport(handler))
        try:
            return await fetcher.fetch(URL, headers, deadline, max_bytes)
        finally:
            await fetcher.close()

    return asyncio.run(go())


def test_a_body_within_the_limit_is_returned_with_lower_case_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"hello", headers={"X-Version": "7"})

    got = fetch(handler, authorization="Bearer t")
    assert isinstance(got, Response)
    assert (got.status, got.body, got.headers["x-version"]) == (200, b"hello", "7")
    assert seen[0].headers["authorization"] == "Bearer t"
    assert seen[0].method == "GET"


def test_an_announced_body_over_the_limit_is_not_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 101)

    got = fetch(handler)
    assert isinstance(got, Response)
    assert (got.body, got.size) == (None, 101)


def test_a_streamed_body_stops_being_read_past_the_limit() -> None:
    chunks_sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        while True:
            chunks_sent += 1
            yield b"y" * 40

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())  # no Content-Length

    got = fetch(handler)
    assert isinstance(got, Response)
    assert got.body is None
    assert got.size == 120
    assert chunks_sent == 3


def test_no_answer_within_the_deadline_is_a_failure() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    got = fetch(handler, deadline=0.05)
    assert got == Failure("no answer within timeoutSeconds (0.05)")


def test_a_connection_error_is_a_failure_naming_its_kind() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    assert fetch(handler) == Failure("ConnectError: connection refused")


def test_redirects_are_not_followed() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/"})

    result = fetch(handler)
    assert isinstance(result, Response)
    assert result.status == 302
    assert calls == [URL]


class SecretApi:
    def __init__(self, data: dict[str, str] | None) -> None:
        self.data = data

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        if self.data is None:
            raise ApiError(404, "NotFound", "secrets not found")
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in self.data.items()}
        return {"data": encoded}


def headers(data: dict[str, str] | None, key: str = "h", optional: bool = False) -> Any:
    ref = KeyRef(name="feed", key=key, optional=optional)
    return asyncio.run(load_headers(cast(KubeApi, SecretApi(data)), "ns", ref))


def test_headers_come_from_a_json_object_in_the_secret() -> None:
    doc = {"Authorization": "Bearer s3cr3t"}
    assert headers({"h": json.dumps(doc)}) == doc


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        (None, "h", "cannot read the Secret (404 NotFound)"),
        ({"other": "{}"}, "h", "no such key"),
        ({"h": "Bearer s3cr3t"}, "h", "must hold a JSON object of header names to strings"),
        ({"h": '{"Authorization": ["s3cr3t"]}'}, "h", "must hold a JSON object"),
    ],
)
def test_a_bad_headers_secret_says_why_without_its_value(
    data: dict[str, str] | None, key: str, message: str
) -> None:
    with pytest.raises(HeadersError) as info:
        headers(data, key)
    text = str(info.value)
    assert text.startswith("spec.poll.headersFrom: Secret 'feed' key 'h': ")
    assert message in text
    assert "s3cr3t" not in text


def test_an_optional_headers_secret_may_be_missing() -> None:
    assert headers(None, optional=True) == {}
    assert headers({"other": "{}"}, optional=True) == {}
