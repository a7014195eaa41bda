"""The shared connection pool never mixes callers: each request carries its own caller's
token, and nothing one caller's response set (a cookie) is sent for another."""

from __future__ import annotations

import httpx

from shoal.server.pool import CallerPool


async def test_each_request_carries_only_its_callers_token() -> None:
    seen: list[httpx.Request] = []

    def kubernetes(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        # A proxy in front of the API server pinning a session with a cookie.
        return httpx.Response(200, json={"items": []}, headers={"Set-Cookie": "session=alice"})

    pool = CallerPool("https://kube.example", False, httpx.MockTransport(kubernetes))
    try:
        alice, bob = pool.api("alice-token"), pool.api("bob-token")
        await alice.get("/apis/shoal.dev/v1alpha1/workflows")
        await bob.get("/apis/shoal.dev/v1alpha1/workflows")
        await alice.get("/apis/shoal.dev/v1alpha1/workflows")
        await bob.close()  # closes nothing: alice's next request still goes through
        await alice.get("/apis/shoal.dev/v1alpha1/workflows")
    finally:
        await pool.aclose()
    assert [r.headers["authorization"] for r in seen] == [
        "Bearer alice-token",
        "Bearer bob-token",
        "Bearer alice-token",
        "Bearer alice-token",
    ]
    assert all("cookie" not in r.headers for r in seen)
