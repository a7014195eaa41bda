"""Cron fires recorded in the PostgreSQL archive: scheduled, poll, after and manual runs.

The operator of this test archives to a database of its own; every kind of fire happens
once or more, and `shoal_cron_fires` must hold a row for each run that fired, at the time
the docs promise (the scheduled time for a scheduled run).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.cluster.conftest import REPO, start_operator
from tests.cluster.test_cron import create_cron, watch_runs
from tests.cluster.test_cron_poll import IMAGE, FeedServer

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]


@pytest.fixture
def dsn(postgres: Any) -> Iterator[str]:
    name = f"cron_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres.dsn, timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    yield postgres.dsn.rsplit("/", 1)[0] + "/" + name
    asyncio.run(admin(f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()


def fires(dsn: str, namespace: str) -> dict[str, datetime]:
    """workflow name -> the time recorded for it."""

    async def query() -> dict[str, datetime]:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            rows = await conn.fetch(
                "SELECT workflow_name, scheduled_at FROM shoal_cron_fires WHERE namespace = $1",
                namespace,
            )
        finally:
            await conn.close()
        return {r["workflow_name"]: r["scheduled_at"] for r in rows}

    return asyncio.run(query())


def wait_fires(dsn: str, namespace: str, names: set[str], timeout: float) -> dict[str, datetime]:
    deadline = time.monotonic() + timeout
    found: dict[str, datetime] = {}
    while time.monotonic() < deadline:
        found = fires(dsn, namespace)
        if names <= set(found):
            return found
        time.sleep(0.2)  # the next look at the database, not a synchronisation
    raise AssertionError(f"fires recorded after {timeout}s: {sorted(found)}; wanted {names}")


def test_own_operator_records_every_kind_of_fire(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    dsn: str,
    feed: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOAL_DATABASE_URL", dsn)
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
    noop = {"nodes": [{"name": "a", "job": "shoal.noop"}], "image": IMAGE}
    try:
        create_cron(
            k8s_api,
            namespace,
            {
                "apiVersion": "shoal.dev/v1alpha1",
                "kind": "CronWorkflow",
                "metadata": {"name": "src"},
                "spec": {
                    "schedule": "*/2 * * * * *",
                    "poll": {"url": feed.url, "intervalSeconds": 1},
                    "successfulRunsHistoryLimit": 50,
                    "workflowSpec": noop,
                },
            },
        )
        create_cron(
            k8s_api,
            namespace,
            {
                "apiVersion": "shoal.dev/v1alpha1",
                "kind": "CronWorkflow",
                "metadata": {"name": "next"},
                "spec": {"after": {"cronWorkflow": "src"}, "workflowSpec": noop},
            },
        )
        feed.wait_requests(1, timeout=30)  # the poll's baseline
        with feed.lock:
            feed.body = b"changed"
        manual = subprocess.run(
            [sys.executable, "-m", "shoal.cli.main", "trigger", "src", "-n", namespace],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        )
        assert manual.returncode == 0, manual.stderr

        def kind(name: str) -> str:
            if re.fullmatch(r"src-\d+", name):
                return "scheduled"
            return "poll" if name.startswith("src-p") else "manual"

        src = watch_runs(
            k8s_api,
            namespace,
            "src",
            lambda r: {kind(n) for n in r} == {"scheduled", "poll", "manual"},
            timeout=60,
        )
        downstream = watch_runs(k8s_api, namespace, "next", lambda r: len(r) >= 1, 60)
        scheduled = next(n for n in src if kind(n) == "scheduled")
        poll = next(n for n in src if kind(n) == "poll")
        by_cli = next(n for n in src if kind(n) == "manual")
        after = next(iter(downstream))
        found = wait_fires(dsn, namespace, {scheduled, poll, by_cli, after}, timeout=60)
    finally:
        op.stop()
    assert found[scheduled] == datetime.fromtimestamp(int(scheduled.split("-")[1]), UTC)
    created = datetime.fromisoformat(
        src[by_cli]["metadata"]["creationTimestamp"].replace("Z", "+00:00")
    )
    assert 0 <= (found[by_cli] - created).total_seconds() < 1
