"""Six-field schedules read seconds first; the ambiguous seconds-last form is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shoal.api.cron_syntax import croniter_form, describe, schedule_problem
from shoal.cron.schedule import times_between

T0 = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)  # a Monday


def fires(expr: str, seconds: int) -> list[datetime]:
    return list(times_between([expr], ZoneInfo("UTC"), T0, T0 + timedelta(seconds=seconds)))


def test_six_fields_put_seconds_first_as_quartz_and_argo_do() -> None:
    assert fires("*/20 * * * * *", 60) == [T0 + timedelta(seconds=s) for s in (20, 40, 60)]


def test_five_fields_are_standard_cron() -> None:
    assert fires("*/20 * * * *", 3600) == [T0 + timedelta(minutes=m) for m in (20, 40, 60)]


def test_a_six_field_weekday_is_the_last_field() -> None:
    # 09:00:30 on Mondays: T0 is a Monday at 08:00.
    assert fires("30 0 9 * * 1", 7 * 86400) == [T0 + timedelta(hours=1, seconds=30)]


@pytest.mark.parametrize(
    ("expr", "fix"),
    [("* * * * * */2", "*/2 * * * * *"), ("* * * * * 30", "30 * * * * *")],
)
def test_the_seconds_last_form_is_refused_with_the_fix(expr: str, fix: str) -> None:
    problem = schedule_problem(expr)
    assert problem is not None
    assert "read seconds first" in problem
    assert problem.endswith(f"for seconds write {fix!r}")


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("1 2 3", "'1 2 3' has 3 fields; a schedule has 5"),
        ("* * * * * * *", "has 7 fields"),
        ("61 * * * *", "not a valid cron expression: '61 * * * *'"),
    ],
)
def test_other_bad_schedules_say_why(expr: str, words: str) -> None:
    problem = schedule_problem(expr)
    assert problem is not None
    assert words in problem


@pytest.mark.parametrize("expr", ["0 3 * * *", "*/2 * * * * *", "0 0 9 * * MON-FRI", "@daily"])
def test_good_schedules_pass(expr: str) -> None:
    assert schedule_problem(expr) is None


def test_croniter_gets_seconds_last() -> None:
    assert croniter_form("*/2 * * * * *") == "* * * * * */2"
    assert croniter_form("0 3 * * *") == "0 3 * * *"


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("*/20 * * * * *", "Every 20 seconds"),
        ("0 3 * * *", "At 03:00"),
        ("0 9 * * MON-FRI", "At 09:00, Monday through Friday"),
        ("@hourly", "Once an hour, at minute 0"),
    ],
)
def test_a_schedule_in_words(expr: str, words: str) -> None:
    assert describe(expr) == words
