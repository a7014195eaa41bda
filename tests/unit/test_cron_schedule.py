"""CronWorkflow schedule maths with a fake clock: times, zones and DST, policies, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shoal.api.cron import CronWorkflowSpec
from shoal.cron.schedule import (
    Run,
    decide,
    fingerprint,
    history_to_delete,
    last_successful,
    next_time,
    run_name,
    schedule_since,
    times_between,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def spec(**fields: Any) -> CronWorkflowSpec:
    doc = {"schedule": "0 * * * *", "workflowSpec": {"nodes": [{"name": "a", "job": "j"}]}}
    return CronWorkflowSpec.model_validate(doc | fields)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc,arg-type]


def between(expr: str | list[str], zone: ZoneInfo, after: datetime, until: datetime) -> list[Any]:
    exprs = [expr] if isinstance(expr, str) else expr
    return list(times_between(exprs, zone, after, until))


# Times, zones and DST


def test_hourly_in_utc() -> None:
    assert between("0 * * * *", ZoneInfo("UTC"), T0, T0 + timedelta(hours=3)) == [
        T0 + timedelta(hours=h) for h in (1, 2, 3)
    ]


def test_bounds_are_exclusive_then_inclusive() -> None:
    got = between("*/30 * * * *", ZoneInfo("UTC"), T0, T0 + timedelta(minutes=30))
    assert got == [T0 + timedelta(minutes=30)]


def test_seconds_field_is_first() -> None:
    got = between("*/2 * * * * *", ZoneInfo("UTC"), T0, T0 + timedelta(seconds=6))
    assert got == [T0 + timedelta(seconds=s) for s in (2, 4, 6)]


def test_list_of_schedules_merges_in_order_without_duplicates() -> None:
    got = between(
        ["0 * * * *", "30 * * * *", "0 */2 * * *"], ZoneInfo("UTC"), T0, utc(2026, 1, 1, 2)
    )
    assert got == [
        utc(2026, 1, 1, 0, 30),
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 1, 30),
        utc(2026, 1, 1, 2),
    ]


def test_daily_follows_the_zone_across_dst() -> None:
    got = between("0 9 * * *", BERLIN, utc(2026, 3, 28), utc(2026, 3, 30))
    assert got == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7)]  # 09:00 CET, then 09:00 CEST


@pytest.mark.parametrize(
    ("zone", "day"),
    [(BERLIN, (2026, 3, 29)), (NEW_YORK, (2026, 3, 8))],
)
def test_spring_forward_gap_fires_once_shifted(zone: ZoneInfo, day: tuple[int, int, int]) -> None:
    start = local(zone, *day, 0)
    got = between("30 2 * * *", zone, start, start + timedelta(hours=6))
    # 02:30 does not exist: it fires once, an hour (the gap) later, at 03:30 local.
    assert got == [local(zone, *day, 3, 30)]
    assert got[0].astimezone(zone).hour == 3


@pytest.mark.parametrize(
    ("zone", "day"),
    [(BERLIN, (2026, 3, 29)), (NEW_YORK, (2026, 3, 8))],
)
def test_spring_forward_gap_merges_with_the_next_real_time(
    zone: ZoneInfo, day: tuple[int, int, int]
) -> None:
    start = local(zone, *day, 0)
    got = between("0 * * * *", zone, start, start + timedelta(hours=4))
    locals_ = [t.astimezone(zone).strftime("%H:%M%z") for t in got]
    # 02:00 is skipped by the clock; it maps to 03:00 new time, which is also due: once.
    assert locals_[:3] == [
        f"01:00{_off(zone, 0)}",
        f"03:00{_off(zone, 1)}",
        f"04:00{_off(zone, 1)}",
    ]
    assert len(got) == len(set(got))


def _off(zone: ZoneInfo, summer: int) -> str:
    return {BERLIN: ["+0100", "+0200"], NEW_YORK: ["-0500", "-0400"]}[zone][summer]


def test_spring_forward_every_minute_never_goes_backwards() -> None:
    start = local(BERLIN, 2026, 3, 29, 1, 50)
    got = between("*/20 * * * *", BERLIN, start, start + timedelta(hours=2))
    assert got == sorted(set(got))
    assert [t.astimezone(BERLIN).strftime("%H:%M") for t in got] == [
        "03:00", "03:20", "03:40", "04:00", "04:20", "04:40",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("zone", "day"),
    [(BERLIN, (2026, 10, 25)), (NEW_YORK, (2026, 11, 1))],
)
def test_fall_back_overlap_fires_once_at_the_first_occurrence(
    zone: ZoneInfo, day: tuple[int, int, int]
) -> None:
    start = local(zone, *day, 0)
    got = between("30 1,2 * * *", zone, start, start + timedelta(hours=6))
    repeated = 2 if zone is BERLIN else 1
    first = local(zone, *day, repeated, 30, fold=0)
    assert first in got
    assert local(zone, *day, repeated, 30, fold=1) not in got
    assert len(got) == 2


def test_fall_back_hourly_skips_the_repeated_hour_once() -> None:
    start = local(BERLIN, 2026, 10, 25, 1)
    got = between("0 * * * *", BERLIN, start, start + timedelta(hours=4))
    # 02:00 CEST, then 02:00 CET is the same wall time (not again), then 03:00 CET.
    assert [t - start for t in got] == [timedelta(hours=h) for h in (1, 3, 4)]


def test_after_inside_the_repeated_hour_does_not_fire_again() -> None:
    second = local(BERLIN, 2026, 10, 25, 2, 10, fold=1)
    got = between("30 2 * * *", BERLIN, second, second + timedelta(hours=2))
    assert got == []


def test_after_just_past_a_gap_still_sees_the_shifted_time() -> None:
    after = local(BERLIN, 2026, 3, 29, 3, 15)  # 03:15 CEST; 02:30 fires at 03:30 CEST
    assert between("30 2 * * *", BERLIN, after, after + timedelta(hours=1)) == [
        local(BERLIN, 2026, 3, 29, 3, 30)
    ]


def test_next_time() -> None:
    assert next_time(spec(), T0) == T0 + timedelta(hours=1)
    assert next_time(spec(schedule=None, poll={"url": "https://x"}), T0) is None


# Names


def test_run_name_is_cron_and_epoch() -> None:
    assert run_name("nightly", T0) == f"nightly-{int(T0.timestamp())}"


def test_long_run_name_fits_253_and_stays_distinct() -> None:
    long = "a" * 260
    names = {
        run_name(long, T0),
        run_name(long + "b", T0),
        run_name(long, T0 + timedelta(seconds=1)),
    }
    assert len(names) == 3
    assert all(len(n) <= 253 for n in names)
    assert all(n.endswith(str(int(T0.timestamp()))) or n.endswith("1767225601") for n in names)


# Decisions


def test_fires_the_due_time_and_wakes_at_the_next() -> None:
    d = decide(spec(), "c", T0, None, [], T0 + timedelta(hours=1, seconds=0.2))
    assert d.fire == [T0 + timedelta(hours=1)]
    assert d.last_schedule_time == T0 + timedelta(hours=1)
    assert d.next_wake == T0 + timedelta(hours=2)
    assert d.active == [run_name("c", T0 + timedelta(hours=1))]
    assert d.missed == 0


def test_nothing_due_before_the_first_time() -> None:
    d = decide(spec(), "c", T0, None, [], T0 + timedelta(minutes=59))
    assert d.fire == []
    assert d.last_schedule_time is None
    assert d.next_wake == T0 + timedelta(hours=1)


def test_existing_run_means_already_fired() -> None:
    t = T0 + timedelta(hours=1)
    runs = [Run(run_name("c", t), t, "Running")]
    d = decide(spec(), "c", T0, None, runs, t + timedelta(seconds=1))
    assert d.fire == []
    assert d.missed == 0
    assert d.last_schedule_time == t


def test_last_schedule_time_is_the_cursor() -> None:
    t = T0 + timedelta(hours=1)
    d = decide(spec(), "c", T0, t, [], t + timedelta(minutes=30))
    assert d.fire == []


@pytest.mark.parametrize(
    ("policy", "max_runs", "fired_hours", "missed"),
    [
        ("none", 10, [], 5),
        ("latest", 10, [5], 4),
        ("all", 10, [1, 2, 3, 4, 5], 0),
        ("all", 2, [4, 5], 3),
    ],
)
def test_catch_up_after_downtime(
    policy: str, max_runs: int, fired_hours: list[int], missed: int
) -> None:
    s = spec(catchUp={"policy": policy, "maxRuns": max_runs})
    now = T0 + timedelta(hours=5, minutes=10)
    d = decide(s, "c", T0, None, [], now)
    assert d.fire == [T0 + timedelta(hours=h) for h in fired_hours]
    assert d.missed == missed
    assert d.last_schedule_time == T0 + timedelta(hours=5)
    assert d.next_wake == T0 + timedelta(hours=6)


def test_catch_up_none_still_fires_an_on_time_run() -> None:
    s = spec(catchUp={"policy": "none"})
    d = decide(s, "c", T0, None, [], T0 + timedelta(hours=1, seconds=2))
    assert d.fire == [T0 + timedelta(hours=1)]


def test_starting_deadline_limits_catch_up() -> None:
    s = spec(catchUp={"policy": "all"}, startingDeadlineSeconds=2 * 3600 + 20 * 60)
    d = decide(s, "c", T0, None, [], T0 + timedelta(hours=5, minutes=10))
    assert d.fire == [T0 + timedelta(hours=h) for h in (3, 4, 5)]
    assert d.missed == 2


def test_starting_deadline_misses_a_late_run() -> None:
    s = spec(startingDeadlineSeconds=10)
    d = decide(s, "c", T0, None, [], T0 + timedelta(hours=1, seconds=11))
    assert d.fire == []
    assert d.missed == 1
    assert d.last_schedule_time == T0 + timedelta(hours=1)


def test_long_downtime_with_a_seconds_schedule_is_cheap() -> None:
    s = spec(schedule="* * * * * *", catchUp={"policy": "all", "maxRuns": 3})
    now = T0 + timedelta(days=30)
    d = decide(s, "c", T0, None, [], now)
    assert d.fire == [now - timedelta(seconds=s) for s in (2, 1, 0)]
    assert d.missed >= 10_000  # counted one by one up to a cap


def test_suspend_fires_nothing_and_moves_the_cursor() -> None:
    d = decide(spec(suspend=True), "c", T0, None, [], T0 + timedelta(hours=3))
    assert d.fire == []
    assert d.next_wake is None
    assert d.last_schedule_time == T0 + timedelta(hours=3)


def test_forbid_skips_while_a_run_is_active() -> None:
    old = T0 + timedelta(hours=1)
    runs = [Run(run_name("c", old), old, "Running")]
    s = spec(concurrencyPolicy="Forbid")
    d = decide(s, "c", T0, old, runs, T0 + timedelta(hours=2))
    assert d.fire == []
    assert d.skipped == [T0 + timedelta(hours=2)]
    assert d.active == [run_name("c", old)]


def test_forbid_fires_when_the_previous_run_finished() -> None:
    old = T0 + timedelta(hours=1)
    runs = [Run(run_name("c", old), old, "Succeeded")]
    d = decide(spec(concurrencyPolicy="Forbid"), "c", T0, old, runs, T0 + timedelta(hours=2))
    assert d.fire == [T0 + timedelta(hours=2)]


def test_forbid_catch_up_fires_only_the_latest() -> None:
    s = spec(concurrencyPolicy="Forbid", catchUp={"policy": "all"})
    d = decide(s, "c", T0, None, [], T0 + timedelta(hours=3))
    assert d.fire == [T0 + timedelta(hours=3)]
    assert len(d.skipped) == 2


def test_replace_stops_active_runs() -> None:
    old = T0 + timedelta(hours=1)
    runs = [Run(run_name("c", old), old, "Running"), Run("c-0", T0, "Succeeded")]
    d = decide(spec(concurrencyPolicy="Replace"), "c", T0, old, runs, T0 + timedelta(hours=2))
    assert d.fire == [T0 + timedelta(hours=2)]
    assert d.stop == [run_name("c", old)]
    assert d.replaced == 1
    assert d.active == [run_name("c", T0 + timedelta(hours=2))]


def test_replace_without_a_due_time_stops_nothing() -> None:
    old = T0 + timedelta(hours=1)
    runs = [Run(run_name("c", old), old, "Running")]
    d = decide(spec(concurrencyPolicy="Replace"), "c", T0, old, runs, old + timedelta(minutes=1))
    assert d.stop == []


def test_allow_runs_concurrently() -> None:
    old = T0 + timedelta(hours=1)
    runs = [Run(run_name("c", old), old, "Running")]
    d = decide(spec(), "c", T0, old, runs, T0 + timedelta(hours=2))
    assert d.fire == [T0 + timedelta(hours=2)]
    assert d.stop == []


def test_no_schedule_decides_only_history() -> None:
    d = decide(spec(schedule=None, poll={"url": "https://x"}), "c", T0, None, [], T0)
    assert d.fire == []
    assert d.next_wake is None


def test_history_limits() -> None:
    runs = [Run(f"c-{i}", T0 + timedelta(hours=i), "Succeeded") for i in range(5)]
    runs += [
        Run(f"f-{i}", T0 + timedelta(hours=i), p)
        for i, p in enumerate(["Failed", "Error", "Stopped"])
    ]
    runs += [Run("r", T0, "Running")]
    s = spec(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1)
    assert sorted(history_to_delete(s, runs)) == ["c-0", "c-1", "c-2", "f-0", "f-1"]
    assert decide(s, "c", T0, None, runs, T0).delete == history_to_delete(s, runs)
    assert (
        history_to_delete(spec(successfulRunsHistoryLimit=0, failedRunsHistoryLimit=0), runs) != []
    )


def test_last_successful() -> None:
    runs = [Run("a", T0, "Succeeded"), Run("b", T0 + timedelta(hours=1), "Failed")]
    assert last_successful(runs) == T0
    assert last_successful([]) is None


def test_a_lost_status_patch_never_refires_deleted_older_runs() -> None:
    # Runs at 1h and 2h were deleted by history limits; the status patch naming 3h was lost.
    t3 = T0 + timedelta(hours=3)
    runs = [Run(run_name("c", t3), t3, "Succeeded")]
    d = decide(spec(catchUp={"policy": "all"}), "c", T0, None, runs, t3 + timedelta(minutes=1))
    assert d.fire == []
    assert d.last_schedule_time == t3


def test_an_edited_schedule_never_fires_times_from_before_the_edit() -> None:
    # Hourly since T0, last fired at 01:00; at 04:30 the schedule becomes every 30 minutes
    # with catch-up `all`: without the edit time, 01:30 .. 04:30 (seven times) would fire.
    old = spec()
    new = spec(schedule="*/30 * * * *", catchUp={"policy": "all", "maxRuns": 10})
    last, edit = T0 + timedelta(hours=1), T0 + timedelta(hours=4, minutes=30, seconds=1)
    since = schedule_since(new, fingerprint(old), None, edit)
    assert since == edit
    assert decide(new, "c", T0, last, [], edit, since=since).fire == []
    later = edit + timedelta(minutes=30)
    d = decide(new, "c", T0, last, [], later, since=since)
    assert d.fire == [T0 + timedelta(hours=5)]


def test_an_unchanged_schedule_keeps_its_catch_up() -> None:
    s = spec(catchUp={"policy": "all", "maxRuns": 10})
    assert schedule_since(s, fingerprint(s), None, T0 + timedelta(days=1)) is None
    d = decide(s, "c", T0, T0 + timedelta(hours=1), [], T0 + timedelta(hours=3, seconds=1))
    assert d.fire == [T0 + timedelta(hours=2), T0 + timedelta(hours=3)]


def test_a_time_zone_change_is_an_edit() -> None:
    assert fingerprint(spec()) != fingerprint(spec(timezone="Europe/Berlin"))
