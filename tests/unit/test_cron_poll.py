"""Poll-trigger decisions with a fake clock: baseline, change, condition, limits, backoff."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shoal.api.cron import CronWorkflowSpec, PollTrigger
from shoal.cron.poll import (
    Failure,
    Outcome,
    PollState,
    Response,
    decide,
    retry_after,
    run_name,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def trigger(**fields: Any) -> PollTrigger:
    return PollTrigger.model_validate({"url": "https://feed.example/x", **fields})


def ok(body: bytes | str, status: int = 200, **headers: str) -> Response:
    data = body.encode() if isinstance(body, str) else body
    return Response(status, {k.replace("_", "-"): v for k, v in headers.items()}, data, len(data))


def sha(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def test_the_first_check_is_the_baseline_and_fires_nothing() -> None:
    d = decide("feed", trigger(intervalSeconds=30), PollState(), ok("v1"), T0)
    assert not d.fire
    assert not d.changed
    assert d.state.content_hash == sha("v1")
    assert d.state.next_check == T0 + timedelta(seconds=30)
    assert d.state.error is None


def test_a_change_fires_with_the_body_status_and_both_hashes() -> None:
    state = PollState(content_hash=sha("v1"), fires=4)
    body = '{"v": 2}'
    d = decide("feed", trigger(), state, ok(body), T0)
    assert d.fire
    assert d.changed
    assert d.run == f"feed-p4-{sha(body)[:10]}"
    assert d.parameters == {
        "pollBody": body,
        "pollStatus": 200,
        "pollHash": sha(body),
        "pollPreviousHash": sha("v1"),
    }
    assert d.state.fires == 5
    assert d.state.content_hash == sha(body)


def test_the_same_content_fires_nothing() -> None:
    state = PollState(content_hash=sha("v1"), fires=1)
    d = decide("feed", trigger(), state, ok("v1"), T0)
    assert not d.fire
    assert not d.changed
    assert d.state.fires == 1


def test_content_that_comes_back_fires_again_under_a_new_name() -> None:
    first = decide("feed", trigger(), PollState(content_hash=sha("a")), ok("b"), T0)
    back = decide("feed", trigger(), first.state, ok("a"), T0)
    again = decide("feed", trigger(), back.state, ok("b"), T0)
    assert first.fire
    assert back.fire
    assert again.fire
    assert len({first.run, back.run, again.run}) == 3


def test_a_restart_that_lost_the_status_patch_makes_the_same_name() -> None:
    """The run was created, the status was not patched: the same state and content give
    the same name again, so the create is a 409, not a second run."""
    state = PollState(content_hash=sha("a"), fires=7)
    assert (
        decide("feed", trigger(), state, ok("b"), T0).run
        == decide("feed", trigger(), state, ok("b"), T0 + timedelta(minutes=5)).run
    )


def test_a_new_url_starts_a_new_baseline() -> None:
    old = decide("feed", trigger(url="https://a.example/"), PollState(), ok("a"), T0)
    moved = decide("feed", trigger(url="https://b.example/"), old.state, ok("b"), T0)
    assert not moved.fire
    assert not moved.changed
    assert moved.state.content_hash == sha("b")
    again = decide("feed", trigger(url="https://b.example/"), moved.state, ok("c"), T0)
    assert again.fire
    assert again.parameters["pollPreviousHash"] == sha("b")


def test_fire_on_always_fires_every_check_including_the_first() -> None:
    t = trigger(fireOn="always")
    first = decide("feed", t, PollState(), ok("same"), T0)
    second = decide("feed", t, first.state, ok("same"), T0 + timedelta(minutes=1))
    assert first.fire
    assert second.fire
    assert first.run != second.run
    assert first.parameters["pollPreviousHash"] == ""
    assert not second.changed


def test_the_condition_sees_status_headers_body_and_json() -> None:
    t = trigger(
        condition='response.status == 200 && response.json.state == "released" '
        '&& response.headers["x-env"] == "prod" && response.body.contains("released")'
    )
    state = PollState(content_hash=sha("old"))
    released = ok('{"state": "released"}', x_env="prod")
    building = ok('{"state": "building"}', x_env="prod")
    assert decide("feed", t, state, released, T0).fire
    d = decide("feed", t, state, building, T0)
    assert not d.fire
    assert d.changed
    assert d.state.content_hash == sha('{"state": "building"}')  # the change is seen
    assert d.state.error is None


def test_a_condition_that_fails_fires_nothing_and_says_so() -> None:
    t = trigger(condition="response.json.state == 'x'")
    d = decide("feed", t, PollState(content_hash=sha("old")), ok("not json"), T0)
    assert not d.fire
    assert d.state.error is not None
    assert d.state.error.startswith("spec.poll.condition: ")


def test_a_condition_that_is_not_a_bool_says_so() -> None:
    t = trigger(condition="response.status")
    d = decide("feed", t, PollState(content_hash=sha("old")), ok("new"), T0)
    assert not d.fire
    assert d.state.error == "spec.poll.condition: 'response.status' gave 200, not true or false"


def test_an_invalid_condition_is_rejected_by_the_model_naming_the_field() -> None:
    poll = {"url": "https://x.example", "condition": "respons.status == 200"}
    doc: dict[str, Any] = {
        "poll": poll,
        "workflowSpec": {"nodes": [{"name": "a", "job": "j"}]},
    }
    with pytest.raises(ValidationError) as info:
        CronWorkflowSpec.model_validate(doc)
    error = info.value.errors()[0]
    assert error["loc"] == ("poll", "condition")
    assert "unknown name 'respons'" in error["msg"]
    poll["condition"] = "response.status =="
    with pytest.raises(ValidationError, match="bad expression"):
        CronWorkflowSpec.model_validate(doc)


def test_a_body_over_the_limit_fires_nothing_and_keeps_the_hash() -> None:
    t = trigger(maxBodyBytes=10, intervalSeconds=5)
    state = PollState(content_hash=sha("old"), failures=2)
    d = decide("feed", t, state, Response(200, {}, None, 11), T0)
    assert not d.fire
    assert d.state.content_hash == sha("old")
    assert d.state.error is not None
    assert "exceeds maxBodyBytes (10)" in d.state.error
    assert d.state.next_check == T0 + timedelta(seconds=5)  # the server is fine: no backoff
    assert d.state.failures == 0


def test_errors_back_off_exponentially_up_to_the_cap_and_a_success_resets() -> None:
    t = trigger(intervalSeconds=10, maxBackoffSeconds=60)
    state = PollState(content_hash=sha("a"))
    waits = []
    outcomes: list[Outcome] = [Failure("ConnectError: refused"), ok("", 500), ok("", 502)]
    for outcome in outcomes * 2:
        d = decide("feed", t, state, outcome, T0)
        assert d.failed
        assert not d.fire
        assert d.state.next_check is not None
        waits.append((d.state.next_check - T0).total_seconds())
        state = d.state
    assert waits == [10, 20, 40, 60, 60, 60]
    assert state.error == "HTTP 502"
    assert state.content_hash == sha("a")
    d = decide("feed", t, state, ok("a"), T0)
    assert (d.state.failures, d.state.error) == (0, None)
    assert d.state.next_check == T0 + timedelta(seconds=10)


def test_retry_after_on_429_and_503_holds_the_next_check_back() -> None:
    t = trigger(intervalSeconds=1)
    for status in (429, 503):
        d = decide("feed", t, PollState(), ok("", status, retry_after="30"), T0)
        assert d.state.next_check == T0 + timedelta(seconds=30)
        assert d.state.error is not None
        assert "Retry-After" in d.state.error
    date = "Sun, 01 Mar 2026 12:02:00 GMT"
    d = decide("feed", t, PollState(), ok("", 429, retry_after=date), T0)
    assert d.state.next_check == T0 + timedelta(minutes=2)


def test_a_short_retry_after_does_not_shorten_the_backoff_and_500_ignores_it() -> None:
    t = trigger(intervalSeconds=10)
    d = decide("feed", t, PollState(failures=3), ok("", 429, retry_after="1"), T0)
    assert d.state.next_check == T0 + timedelta(seconds=80)
    d = decide("feed", t, PollState(), ok("", 500, retry_after="300"), T0)
    assert d.state.next_check == T0 + timedelta(seconds=10)


def test_retry_after_parsing() -> None:
    assert retry_after("120", T0) == T0 + timedelta(seconds=120)
    assert retry_after(" 0 ", T0) == T0
    assert retry_after("Sun, 01 Mar 2026 11:00:00 GMT", T0) == T0  # in the past: now
    assert retry_after("99999999", T0) == T0 + timedelta(days=1)  # capped
    assert retry_after("soon", T0) is None
    assert retry_after("-5", T0) is None
    assert retry_after(None, T0) is None


def test_a_redirect_is_an_error_that_says_redirects_are_not_followed() -> None:
    d = decide("feed", trigger(), PollState(), ok("", 302), T0)
    assert d.failed
    assert d.state.error == "HTTP 302 (redirects are not followed)"


def test_an_error_never_reports_header_values() -> None:
    secret = "Bearer s3cr3t"
    d = decide("feed", trigger(), PollState(), ok("", 401, www_authenticate=secret), T0)
    assert secret not in json.dumps(d.state.error)


def test_run_names_fit_and_are_distinct_per_sequence() -> None:
    digest = sha("x")
    assert run_name("feed", 0, digest) == f"feed-p0-{digest[:10]}"
    long = run_name("c" * 253, 12, digest)
    assert len(long) <= 253
    assert long.endswith(f"-p12-{digest[:10]}")
