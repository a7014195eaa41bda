"""RunRecorder (coalescing, retrying, bounded) and DSN resolution, without a database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from shoal.archive.db import resolve_dsn
from shoal.archive.recorder import RunRecorder
from shoal.archive.service import describe


def wf(uid: str, phase: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid}, "status": {"phase": phase}}


async def test_only_the_latest_state_per_run_waits_while_the_database_is_down() -> None:
    saved: list[tuple[str, str]] = []
    up = asyncio.Event()

    async def save(body: dict[str, Any]) -> None:
        if not up.is_set():
            raise ConnectionRefusedError("down")
        saved.append((body["metadata"]["uid"], body["status"]["phase"]))

    rec = RunRecorder(save, backoff_seconds=0.001, max_backoff_seconds=0.01)
    rec.start()
    try:
        for n in range(1000):
            rec.offer(wf(f"u{n % 3}", f"p{n}"))
            if n % 100 == 0:
                await asyncio.sleep(0.002)
        assert rec.pending == 3
        assert rec.failures > 0
        up.set()
        await asyncio.wait_for(rec.drain(), 5)
    finally:
        await rec.close()
    assert sorted(saved) == [("u0", "p999"), ("u1", "p997"), ("u2", "p998")]


async def test_objects_without_status_or_uid_are_ignored() -> None:
    async def save(body: dict[str, Any]) -> None:
        raise AssertionError("nothing to save")

    rec = RunRecorder(save)
    rec.offer({"metadata": {"uid": "u"}})
    rec.offer({"metadata": {}, "status": {"phase": "Running"}})
    assert rec.pending == 0


def test_dsn_comes_from_the_flag_then_the_file_then_the_environment(tmp_path: Path) -> None:
    env = {"SHOAL_DATABASE_URL": "postgresql://env/db"}
    secret = tmp_path / "url"
    secret.write_text("postgresql://file/db\n")
    assert resolve_dsn("postgresql://flag/db", secret, env) == "postgresql://flag/db"
    assert resolve_dsn(None, secret, env) == "postgresql://file/db"
    assert resolve_dsn(None, None, env) == "postgresql://env/db"
    assert resolve_dsn(None, None, {}) is None


def test_describe_hides_the_password() -> None:
    assert describe("postgresql://shoal:s3cret@db:5432/shoal") == "postgresql://shoal@db:5432/shoal"
    assert describe("postgresql://db/shoal") == "postgresql://db/shoal"
    query = describe("postgresql://db/shoal?sslmode=require&password=s3cret")
    assert "s3cret" not in query
    assert "sslmode=require" in query
    keyword = describe("host=db user=shoal password='s3 cret' dbname=shoal")
    assert "s3" not in keyword
    assert keyword.startswith("host=db user=shoal password=*** ")


def test_history_since_takes_durations_and_dates() -> None:
    import argparse
    from datetime import UTC, datetime

    import pytest

    from shoal.cli.history_command import parse_since

    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 2, 23, 12, tzinfo=UTC)
    assert parse_since("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="duration"):
        parse_since("yesterday")


def test_history_table() -> None:
    from shoal.cli.history_command import render

    run = {
        "namespace": "team-a",
        "name": "wf",
        "phase": "Succeeded",
        "progress": "2/2",
        "createdAt": "2026-03-01T10:00:00+00:00",
        "startedAt": "2026-03-01T10:00:01+00:00",
        "finishedAt": "2026-03-01T10:03:06+00:00",
    }
    lines = render([run]).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "PHASE", "PROGRESS", "CREATED", "DURATION"]
    assert lines[1].split() == [
        "team-a",
        "wf",
        "Succeeded",
        "2/2",
        "2026-03-01",
        "10:00:00",
        "3m05s",
    ]
    assert render([]) == "No runs found."
