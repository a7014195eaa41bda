"""One RFC 3339 reader and writer: what the status, the archive and the CLI rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shoal.core.sizes import json_size
from shoal.core.text import clip
from shoal.core.timestamps import format_rfc3339, parse_rfc3339


def test_a_precise_time_round_trips_exactly() -> None:
    when = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
    text = format_rfc3339(when, fraction=True)
    assert text == "2026-03-01T12:30:05.123456Z"
    assert parse_rfc3339(text) == when


def test_epoch_seconds_and_other_offsets_are_written_in_utc() -> None:
    assert format_rfc3339(0.0) == "1970-01-01T00:00:00Z"
    plus_two = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_rfc3339(plus_two) == "2026-03-01T12:00:00Z"


def test_every_reading_is_aware_so_times_compare() -> None:
    assert parse_rfc3339("2026-03-01T12:00:00Z") == parse_rfc3339("2026-03-01T12:00:00")
    assert parse_rfc3339("2026-03-01T14:00:00+02:00") == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_no_value_is_no_time_and_a_malformed_one_is_an_error() -> None:
    assert parse_rfc3339(None) is None
    assert parse_rfc3339("") is None
    with pytest.raises(ValueError, match="yesterday"):
        parse_rfc3339("yesterday")


def test_clip_keeps_the_limit_with_its_marker() -> None:
    assert clip("short", 10) == "short"
    assert clip("x" * 20, 10) == "x" * 9 + "…"
    assert clip("x" * 20, 10, marker="...") == "x" * 7 + "..."


def test_json_size_counts_encoded_bytes() -> None:
    assert json_size({"a": 1}) == len('{"a":1}')
    assert json_size({"é": "€"}) == len('{"\\u00e9":"\\u20ac"}')
