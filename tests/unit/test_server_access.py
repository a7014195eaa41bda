"""The archive search's input handling and the access-review cache, without a cluster:
a selector or continue token a client makes up is refused (400), never put into SQL, and
the API server is asked once per caller and question within the cache's lifetime."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shoal.archive.search import (
    Cursor,
    Requirement,
    decode_cursor,
    encode_cursor,
    parse_selector,
)
from shoal.server.access import AccessCache, Check


def test_selectors_of_every_equality_kind_are_read() -> None:
    assert parse_selector("team=blue, tier==web,env!=prod,owned,!temp") == [
        Requirement("team", "=", "blue"),
        Requirement("tier", "=", "web"),
        Requirement("env", "!=", "prod"),
        Requirement("owned", "exists"),
        Requirement("temp", "!exists"),
    ]
    assert parse_selector("") == []


@pytest.mark.parametrize(
    "selector",
    ["team in (a,b)", "x=' OR 1=1 --", "=v", "a=b c", ",".join(f"k{i}" for i in range(21))],
)
def test_a_selector_the_search_cannot_read_is_refused(selector: str) -> None:
    with pytest.raises(ValueError, match="selector"):
        parse_selector(selector)


def test_continue_tokens_round_trip_and_made_up_ones_are_refused() -> None:
    cursor = Cursor(datetime(2026, 11, 1, 12, 30, tzinfo=UTC), "0a1b-2c")
    assert decode_cursor(encode_cursor(cursor)) == cursor
    for token in ("nonsense", "eyJ0IjogMX0=", encode_cursor(cursor)[:-4] + "!!!!"):
        with pytest.raises(ValueError, match="continue token"):
            decode_cursor(token)


class Reviewer:
    """Stands in for the API server: allows `list` only, counts the reviews it answers."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        attributes = kwargs["body"]["spec"]["resourceAttributes"]
        self.asked.append(attributes)
        return {"status": {"allowed": attributes["verb"] == "list"}}


async def test_answers_are_cached_per_token_and_question_then_expire() -> None:
    reviewer = Reviewer()
    cache = AccessCache(ttl=60)
    listing, getting = Check("list", "workflows", "a"), Check("get", "workflows", "a")
    api: Any = reviewer
    assert await cache.allowed(api, "token-1", listing)
    assert await cache.allowed(api, "token-1", listing)
    assert not await cache.allowed(api, "token-1", getting)
    assert await cache.allowed(api, "token-2", listing)  # another caller: asked again
    assert len(reviewer.asked) == 3
    assert reviewer.asked[0] == {
        "verb": "list",
        "group": "shoal.dev",
        "resource": "workflows",
        "subresource": "",
        "namespace": "a",
    }
    expired = AccessCache(ttl=0)
    await expired.allowed(api, "token-1", listing)
    await expired.allowed(api, "token-1", listing)
    assert len(reviewer.asked) == 5


async def test_the_cache_is_bounded() -> None:
    cache = AccessCache(ttl=60, max_entries=10)
    api: Any = Reviewer()
    for index in range(50):
        await cache.allowed(api, f"token-{index}", Check("list", "workflows", "a"))
    assert len(cache._answers) == 10


def test_log_since_is_bounded_before_kubernetes_is_asked() -> None:
    from fastapi.testclient import TestClient

    from shoal.server.app import create_app
    from shoal.server.identity import AuthMode, Cluster

    api = TestClient(create_app(Cluster("https://127.0.0.1:9", False, AuthMode.CLIENT)))
    token = {"Authorization": "Bearer a-token"}
    for since in ("0", str(10**9), "soon"):
        refused = api.get(f"/api/v1/workflows/ns/wf/nodes/n/log?since={since}", headers=token)
        assert refused.status_code == 400
        assert refused.json()["field"] == "since"
    stream = api.get("/api/v1/stream/workflows?seconds=0", headers=token)
    assert stream.status_code == 400
    assert stream.json()["field"] == "seconds"
