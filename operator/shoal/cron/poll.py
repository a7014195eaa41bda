"""Pure poll-trigger decisions: (trigger, state, response or failure, now) -> what to do.

No I/O and no clock: the controller fetches the URL and passes the outcome and `now`, so
unit tests drive time by hand.

- The first successful check of a URL only records the body's hash (the baseline): with
  `fireOn: change` nothing fires for content that was there before the CronWorkflow
  (or before `url` was changed to it).
- A run fires when the hash differs from the last one seen (or on every check with
  `fireOn: always`) and the optional `condition` holds.
- Errors (no answer, a status that is not 2xx) fire nothing; the wait before the next
  check doubles per consecutive error from `intervalSeconds` up to `maxBackoffSeconds`,
  and never ends before a 429/503 response's `Retry-After`.
- Run names are `<cron>-p<sequence>-<hash prefix>`, the sequence being the number of poll
  fires the status recorded before this one. A restart that lost the status patch makes
  the same name again for the same content (409: already fired), never a second run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from shoal.api.cron import PollFireOn, PollTrigger, compile_condition
from shoal.core import jsonbounds
from shoal.core.expressions import Expression, ExpressionError
from shoal.core.timestamps import format_rfc3339

MAX_NAME = 253
HASH_IN_NAME = 10
MAX_RETRY_AFTER = timedelta(days=1)
"""A Retry-After further away than this is read as this (a typo must not stop polling)."""
RETRY_AFTER_STATUS = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class PollState:
    """What the status remembers between checks."""

    content_hash: str | None = None
    fires: int = 0
    failures: int = 0
    next_check: datetime | None = None
    error: str | None = None
    target: str | None = None
    """`url_key` of the URL `content_hash` came from: a new URL starts a new baseline."""


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer. `body` is None when it was larger than `maxBodyBytes`."""

    status: int
    headers: Mapping[str, str]
    """Names in lower case."""
    body: bytes | None
    size: int
    """Bytes received (or announced by Content-Length) when the body was too large."""


@dataclass(frozen=True, slots=True)
class Failure:
    """No answer: connection refused, timeout, the headers Secret missing..."""

    message: str


Outcome = Response | Failure


@dataclass(frozen=True, slots=True)
class PollDecision:
    state: PollState
    fire: bool = False
    run: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    """The content differs from the last seen (the baseline excluded)."""
    failed: bool = False


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def url_key(url: str) -> str:
    """A short hash of the URL (the status need not repeat a URL's query string)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def run_name(cron: str, sequence: int, digest: str) -> str:
    """`<cron>-p<sequence>-<first 10 hex of the hash>`, the cron name shortened to fit."""
    suffix = f"-p{sequence}-{digest[:HASH_IN_NAME]}"
    return f"{cron[: MAX_NAME - len(suffix)].rstrip('-.')}{suffix}"


def backoff(trigger: PollTrigger, failures: int) -> timedelta:
    """`intervalSeconds` doubled per consecutive failure after the first, capped."""
    cap = max(trigger.max_backoff_seconds, trigger.interval_seconds)
    exponent = min(max(failures - 1, 0), 32)
    return timedelta(seconds=min(trigger.interval_seconds * 2**exponent, cap))


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """A Retry-After header (delay seconds or HTTP-date) as an instant, at most a day out."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        at = now + timedelta(seconds=int(text))
    else:
        try:
            at = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if at.tzinfo is None:  # RFC 9110 dates are GMT
            at = at.replace(tzinfo=now.tzinfo)
    return min(max(at, now), now + MAX_RETRY_AFTER)


@lru_cache(maxsize=256)
def _condition(source: str) -> Expression:
    return compile_condition(source)


def response_variable(response: Response) -> dict[str, Any]:
    """`response` as a condition sees it."""
    body = (response.body or b"").decode("utf-8", errors="replace")
    try:
        parsed = jsonbounds.loads(body) if body else None
    except ValueError:
        parsed = None
    return {
        "status": response.status,
        "headers": dict(response.headers),
        "body": body,
        "json": parsed,
    }


def check_condition(source: str, response: Response) -> tuple[bool, str | None]:
    """(holds, error); an expression that fails or is not a bool holds not and says why."""
    try:
        value = _condition(source).evaluate({"response": response_variable(response)})
    except ExpressionError as err:
        return False, f"spec.poll.condition: {err}"
    if not isinstance(value, bool):
        return False, f"spec.poll.condition: {source!r} gave {value!r}, not true or false"
    return value, None


def decide(
    cron: str, trigger: PollTrigger, state: PollState, outcome: Outcome, now: datetime
) -> PollDecision:
    """What one check's outcome means: fire or not, and the state to record."""
    if isinstance(outcome, Failure):
        return _failed(trigger, state, outcome.message, now, None)
    if not 200 <= outcome.status < 300:
        hint = " (redirects are not followed)" if 300 <= outcome.status < 400 else ""
        after = (
            retry_after(outcome.headers.get("retry-after"), now)
            if outcome.status in RETRY_AFTER_STATUS
            else None
        )
        return _failed(trigger, state, f"HTTP {outcome.status}{hint}", now, after)
    ok = replace(state, failures=0, next_check=now + timedelta(seconds=trigger.interval_seconds))
    if outcome.body is None:
        message = (
            f"the response body ({outcome.size} bytes or more) exceeds maxBodyBytes "
            f"({trigger.max_body_bytes}): nothing fired"
        )
        return PollDecision(replace(ok, error=message))
    digest = content_hash(outcome.body)
    target = url_key(trigger.url)
    previous = state.content_hash if state.target in (None, target) else None
    changed = previous is not None and digest != previous
    wanted = trigger.fire_on == PollFireOn.ALWAYS or changed
    error = None
    if wanted and trigger.condition is not None:
        wanted, error = check_condition(trigger.condition, outcome)
    recorded = replace(ok, content_hash=digest, error=error, target=target)
    if not wanted:
        return PollDecision(recorded, changed=changed)
    parameters = {
        "pollBody": outcome.body.decode("utf-8", errors="replace"),
        "pollStatus": outcome.status,
        "pollHash": digest,
        "pollPreviousHash": previous or "",
    }
    return PollDecision(
        replace(recorded, fires=state.fires + 1),
        fire=True,
        run=run_name(cron, state.fires, digest),
        parameters=parameters,
        changed=changed,
    )


def _failed(
    trigger: PollTrigger,
    state: PollState,
    message: str,
    now: datetime,
    not_before: datetime | None,
) -> PollDecision:
    failures = state.failures + 1
    due = now + backoff(trigger, failures)
    if not_before is not None and not_before > due:
        due = not_before
        message = f"{message}; Retry-After: next check at {format_rfc3339(due)}"
    state = replace(state, failures=failures, next_check=due, error=message)
    return PollDecision(state, failed=True)
