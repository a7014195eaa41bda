"""The PostgreSQL archive against a real server: schema, log sink, store, reader.

Each test gets a database of its own on the session's PostgreSQL server. The restart and
pause tests stop or freeze that whole server, then bring it back before they end.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shoal.archive import reader, store
from shoal.archive.db import open_pool
from shoal.archive.schema import LATEST, migrate, schema_version
from shoal.archive.sink import ArchiveLogSink, dropped_marker

pytestmark = pytest.mark.postgres


@pytest.fixture
def dsn(postgres: Any) -> Iterator[str]:
    name = f"archive_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres.dsn, timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    yield postgres.dsn.rsplit("/", 1)[0] + "/" + name
    postgres.resume()
    postgres.start()
    asyncio.run(admin(f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[Any]:
    pool = await open_pool(dsn)
    try:
        yield pool
    finally:
        pool.terminate()


def body(uid: str, name: str, namespace: str = "team-a") -> dict[str, Any]:
    return {
        "metadata": {
            "uid": uid,
            "name": name,
            "namespace": namespace,
            "labels": {"app": "catalog"},
            "creationTimestamp": "2026-03-01T10:00:00Z",
        },
        "spec": {"parameters": {"region": "eu-west"}, "nodes": [{"name": "a", "job": "j"}]},
    }


async def count_lines(pool: Any) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM shoal_log_lines"))


# -- schema -----------------------------------------------------------------------


async def test_migrations_are_idempotent(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        assert await schema_version(conn) == 0
        assert await migrate(conn) == LATEST
        assert await migrate(conn) == LATEST
        assert await schema_version(conn) == LATEST
        rows = await conn.fetchval("SELECT count(*) FROM shoal_schema_version")
        assert rows == LATEST
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_once(dsn: str) -> None:
    conns = [await asyncpg.connect(dsn, timeout=30) for _ in range(6)]
    try:
        versions = await asyncio.gather(*(migrate(c) for c in conns))
        assert versions == [LATEST] * len(conns)
        rows = await conns[0].fetch("SELECT version FROM shoal_schema_version ORDER BY 1")
        assert [r["version"] for r in rows] == list(range(1, LATEST + 1))
    finally:
        for c in conns:
            await c.close()


# -- store and reader --------------------------------------------------------------


async def test_runs_and_nodes_round_trip(pool: Any) -> None:
    running = {
        "phase": "Running",
        "progress": "0/2",
        "startedAt": "2026-03-01T10:00:01.000000Z",
        "nodes": {"a": {"phase": "Running", "attempts": 1, "startedAt": "2026-03-01T10:00:01Z"}},
    }
    await store.save_run(pool, body("u1", "wf"), running)
    done = {
        "phase": "Failed",
        "progress": "1/2",
        "message": "node b failed",
        "startedAt": "2026-03-01T10:00:01Z",
        "finishedAt": "2026-03-01T10:00:09Z",
        "nodes": {
            "a": {"phase": "Succeeded", "attempts": 1, "exitCode": 0, "outputs": {"n": 3}},
            "b": {
                "phase": "Failed",
                "attempts": 2,
                "exitCode": 1,
                "message": "boom",
                "items": {"total": 2, "failed": 1},
            },
        },
    }
    await store.save_run(pool, body("u1", "wf"), done)
    await store.save_run(pool, body("u2", "other", namespace="team-b"), running)

    detail = await reader.get_run(pool, "u1")
    assert detail is not None
    assert detail.run.phase == "Failed"
    assert detail.run.message == "node b failed"
    assert detail.run.labels == {"app": "catalog"}
    assert detail.parameters == {"region": "eu-west"}
    assert detail.run.finished_at == datetime(2026, 3, 1, 10, 0, 9, tzinfo=UTC)
    nodes = {n.node: n for n in detail.nodes}
    assert nodes["a"].outputs == {"n": 3}
    assert nodes["b"].items == {"total": 2, "failed": 1}
    assert (nodes["b"].exit_code, nodes["b"].attempts) == (1, 2)
    assert await reader.get_run(pool, "missing") is None

    assert [r.uid for r in await reader.list_runs(pool, namespace="team-a")] == ["u1"]
    assert [r.uid for r in await reader.list_runs(pool, phase="Running")] == ["u2"]
    since = datetime(2026, 3, 2, tzinfo=UTC)
    assert await reader.list_runs(pool, since=since) == []
    found = await reader.find_run(pool, "team-b", "other")
    assert found is not None
    assert found.uid == "u2"


async def test_attempts_and_cron_fires(pool: Any) -> None:
    await store.save_run(pool, body("u1", "wf"), {"phase": "Running"})
    await store.save_attempt(pool, "u1", "a", 7, 1, phase="Running")
    await store.save_attempt(pool, "u1", "a", 7, 1, phase="Failed", exit_code=2, message="x")
    row = await pool.fetchrow("SELECT phase, exit_code FROM shoal_attempts")
    assert (row["phase"], row["exit_code"]) == ("Failed", 2)
    # After `shoal retry` the node's attempts count from 1 again: both rounds are kept.
    await store.save_attempt(pool, "u1", "a", 7, 1, phase="Succeeded", exit_code=0, retry=1)
    await store.save_attempt(pool, "u1", "a", 2, 1, phase="Succeeded", exit_code=0)
    rows = await reader.list_attempts(pool, "u1", "a")
    assert [(r.index, r.retry, r.attempt, r.phase) for r in rows] == [
        (2, 0, 1, "Succeeded"),
        (7, 0, 1, "Failed"),
        (7, 1, 1, "Succeeded"),
    ]
    assert [r.index for r in await reader.list_attempts(pool, "u1", "a", failed_only=True)] == [7]
    assert [r.retry for r in await reader.list_attempts(pool, "u1", "a", index=7)] == [0, 1]
    at = datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert await store.record_cron_fire(pool, "ns", "nightly", at, "nightly-1")
    assert not await store.record_cron_fire(pool, "ns", "nightly", at, "nightly-1")


async def test_retention_deletes_old_runs_with_their_logs(pool: Any) -> None:
    old = {"phase": "Succeeded", "finishedAt": "2020-01-01T00:00:00Z", "nodes": {"a": {}}}
    await store.save_run(pool, body("old", "wf"), old)
    await store.save_run(pool, body("new", "wf2"), {"phase": "Running"})
    sink = ArchiveLogSink(pool)
    sink.start()
    sink.write("old", "a", 0, 1, "old line")
    sink.write("new", "a", 0, 1, "new line")
    await sink.close()
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    await store.save_attempt(pool, "old", "a", 0, 1, phase="Succeeded", finished_at=long_ago)
    await store.save_attempt(pool, "orphan", "a", 0, 1, phase="Failed", finished_at=long_ago)
    await store.save_attempt(pool, "new", "a", 0, 1, phase="Succeeded", finished_at=long_ago)
    assert await store.delete_expired(pool, older_than_days=30) == 1
    assert [r.uid for r in await reader.list_runs(pool)] == ["new"]
    assert [x.line for x in await reader.read_logs(pool, "new")] == ["new line"]
    assert await reader.read_logs(pool, "old") == []
    kept = await pool.fetch("SELECT workflow_uid FROM shoal_attempts")
    assert [r["workflow_uid"] for r in kept] == ["new"]  # the run's row keeps them


# -- the log sink ------------------------------------------------------------------


async def test_logs_are_read_back_per_node_in_order(pool: Any) -> None:
    sink = ArchiveLogSink(pool, batch_lines=7)
    sink.start()
    for n in range(100):
        for node in ("a", "b"):
            sink.write("u1", node, n % 3, 1, f"{node} {n}")
    await sink.close()
    assert sink.acknowledged == 200
    lines = await reader.read_logs(pool, "u1", "a")
    assert [x.line for x in lines] == [f"a {n}" for n in range(100)]
    item = await reader.read_logs(pool, "u1", "b", index=1)
    assert [x.line for x in item] == [f"b {n}" for n in range(1, 100, 3)]
    paged = [x.line async for x in reader.iter_logs(pool, "u1", "a", page=9)]
    assert paged == [f"a {n}" for n in range(100)]


async def test_a_database_restart_mid_stream_loses_no_acknowledged_line(
    postgres: Any, pool: Any
) -> None:
    sink = ArchiveLogSink(pool, batch_lines=200, timeout_seconds=5, backoff_seconds=0.05)
    sink.start()
    total = 6000

    async def produce() -> None:
        for n in range(total):
            sink.write("u1", "a", 0, 1, f"line {n}")
            if n % 100 == 0:
                await asyncio.sleep(0.01)

    producer = asyncio.create_task(produce())
    while sink.acknowledged < 1000:  # noqa: ASYNC110 (a counter, not an event)
        await asyncio.sleep(0.01)
    await asyncio.to_thread(postgres.stop)
    acknowledged_before = sink.acknowledged
    await asyncio.sleep(0.5)  # the producer keeps writing while the server is down
    postgres.start()  # main thread: the server dies with the thread that starts it
    await producer
    await asyncio.wait_for(sink.drain(), 60)
    await sink.close()

    assert sink.failures > 0, "the restart was not noticed"
    assert sink.buffer.dropped_total == 0
    rows = await pool.fetch("SELECT line FROM shoal_log_lines WHERE workflow_uid = 'u1'")
    stored = {r["line"] for r in rows}
    # At least once: every line is there (a batch the server committed as it went down
    # may be there twice); certainly every line acknowledged before the restart.
    assert {f"line {n}" for n in range(acknowledged_before)} <= stored
    assert stored == {f"line {n}" for n in range(total)}


async def test_a_line_written_twice_is_archived_once(pool: Any) -> None:
    """A restarted operator re-reads a running pod's log from its first line: every line
    lands once; a `shoal retry` round (attempts numbered from 1 again) keeps its own."""
    sink = ArchiveLogSink(pool, batch_lines=40)
    sink.start()
    for n in range(100):
        sink.write("u1", "a", 0, 1, f"line {n}", line_no=n)
    await sink.drain()
    for n in range(150):  # the re-read: the first 100 again, then 50 new ones
        sink.write("u1", "a", 0, 1, f"line {n}", line_no=n)
    for n in range(10):
        sink.write("u1", "a", 0, 1, f"again {n}", retry=1, line_no=n)
    await asyncio.wait_for(sink.drain(), 60)
    await sink.close()
    lines = [x.line for x in await reader.read_logs(pool, "u1", "a", limit=1000)]
    assert lines == [f"line {n}" for n in range(150)] + [f"again {n}" for n in range(10)]


async def test_memory_stays_bounded_while_the_database_is_paused(postgres: Any, pool: Any) -> None:
    drops: list[int] = []
    sink = ArchiveLogSink(
        pool,
        max_lines=2000,
        batch_lines=500,
        timeout_seconds=1,
        backoff_seconds=0.05,
        on_dropped=drops.append,
    )
    sink.start()
    sink.write("u1", "a", 0, 1, "before")
    await sink.drain()
    postgres.pause()
    try:
        for n in range(30_000):
            sink.write("u1", "a", 0, 1, f"line {n}")
            assert sink.pending <= 2000 + 500 + 1  # buffer, one batch, its gap marker
            if n % 1000 == 0:
                await asyncio.sleep(0.01)
    finally:
        postgres.resume()
    await asyncio.wait_for(sink.drain(), 60)
    await sink.close()
    dropped = sink.buffer.dropped_total
    assert dropped == sum(drops) > 0
    lines = [x.line for x in await reader.read_logs(pool, "u1", "a", limit=100_000)]
    assert lines[0] == "before"
    assert lines[-1] == "line 29999"
    markers = [x for x in lines if x.startswith("[shoal]")]
    assert markers == [dropped_marker(dropped)]
    # The marker sits where the lines went missing: every kept line after it is newer.
    assert len(lines) == 1 + 1 + 30_000 - dropped


async def test_sink_starts_while_the_database_is_down(postgres: Any, dsn: str) -> None:
    pool = await open_pool(dsn)
    try:
        await asyncio.to_thread(postgres.stop)
        sink = ArchiveLogSink(pool, timeout_seconds=2, backoff_seconds=0.05)
        sink.start()
        sink.write("u1", "a", 0, 1, "written while down")
        await asyncio.sleep(0.3)
        assert sink.acknowledged == 0
        postgres.start()  # main thread: the server dies with the thread that starts it
        await asyncio.wait_for(sink.drain(), 60)
        await sink.close()
        assert [x.line for x in await reader.read_logs(pool, "u1")] == ["written while down"]
    finally:
        pool.terminate()


async def test_the_operator_archive_keeps_a_run_and_its_logs_after_deletion(dsn: str) -> None:
    from shoal.archive.service import Archive

    drops: list[int] = []
    archive = await Archive.open(dsn, drops.append)
    try:
        wf = body("u9", "gone")
        archive.runs.offer({**wf, "status": {"phase": "Running", "nodes": {"a": {}}}})
        for n in range(50):
            archive.sink.write("u9", "a", 0, 1, f"line {n}")
        archive.runs.offer({**wf, "status": {"phase": "Succeeded", "nodes": {"a": {}}}})
        await archive.runs.drain()
        await archive.sink.drain()
        # The Workflow and its pods are gone now; the archive still answers.
        run = await reader.find_run(archive.pool, "team-a", "gone")
        assert run is not None
        assert run.phase == "Succeeded"
        lines = await reader.read_logs(archive.pool, run.uid, "a")
        assert [x.line for x in lines] == [f"line {n}" for n in range(50)]
        assert drops == []
    finally:
        await archive.close()


async def test_the_archive_opens_while_the_database_is_down_and_catches_up(
    postgres: Any, dsn: str
) -> None:
    """An operator must start and run Workflows with PostgreSQL down: opening the archive
    does not wait for it, writes are buffered, and all of them land once it is back."""
    from shoal.archive.db import ArchiveUnavailable
    from shoal.archive.service import Archive

    await asyncio.to_thread(postgres.stop)
    archive = await asyncio.wait_for(Archive.open(dsn), 60)
    try:
        assert archive.problem is not None
        assert "password" not in archive.problem
        with pytest.raises(ArchiveUnavailable):
            archive.pool.acquire()
        wf = body("u7", "early")
        archive.runs.offer({**wf, "status": {"phase": "Running", "nodes": {"a": {}}}})
        for n in range(20):
            archive.sink.write("u7", "a", 0, 1, f"line {n}\x00")
        postgres.start()  # main thread: the server dies with the thread that starts it
        await asyncio.wait_for(archive.runs.drain(), 90)
        await asyncio.wait_for(archive.sink.drain(), 90)
        assert archive.problem is None
        run = await reader.find_run(archive.pool, "team-a", "early")
        assert run is not None
        lines = await reader.read_logs(archive.pool, run.uid, "a")
        assert [x.line for x in lines] == [f"line {n}\ufffd" for n in range(20)]
    finally:
        await archive.close()


async def test_a_run_with_nul_in_its_parameters_and_messages_is_archived(pool: Any) -> None:
    wf = body("u8", "nul")
    wf["spec"]["parameters"] = {"region": "eu\x00west", "k\x00": ["\x00"]}
    status = {"phase": "Failed", "message": "bad\x00", "nodes": {"a": {"message": "x\x00y"}}}
    await store.save_run(pool, wf, status)
    run = await reader.find_run(pool, "team-a", "nul")
    assert run is not None
    assert run.phase == "Failed"
    params = await pool.fetchval("SELECT parameters FROM shoal_workflows WHERE uid = 'u8'")
    assert json.loads(params) == {"region": "eu\ufffdwest", "k\ufffd": ["\ufffd"]}


# -- through `shoal operator` -------------------------------------------------------


@pytest.mark.cluster
def test_own_operator_archives_logs_that_outlive_the_workflow(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.cluster.conftest import create_workflow, custom, start_operator, wait_workflow

    monkeypatch.setenv("SHOAL_DATABASE_URL", dsn)
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
    try:
        doc = {
            "apiVersion": "shoal.dev/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": "talks"},
            "spec": {
                "image": "ghcr.io/shoal-dev/worker:0.1.0",
                "nodes": [{"name": "talk", "command": ["sh", "-c", "echo hello; echo archived"]}],
            },
        }
        create_workflow(k8s_api, namespace, doc)
        body = wait_workflow(k8s_api, namespace, "talks", timeout=120)
        assert body["status"]["phase"] == "Succeeded", body["status"]
        custom(k8s_api).delete_namespaced_custom_object(
            "shoal.dev", "v1alpha1", namespace, "workflows", "talks"
        )

        async def archived() -> tuple[str, list[str]]:
            conn = await asyncpg.connect(dsn, timeout=30)
            try:
                for _ in range(300):
                    run = await reader.find_run(conn, namespace, "talks")
                    lines = [] if run is None else await reader.read_logs(conn, run.uid, "talk")
                    if run is not None and run.phase == "Succeeded" and len(lines) >= 2:
                        return run.phase, [x.line for x in lines]
                    await asyncio.sleep(0.1)
                return "not archived", []
            finally:
                await conn.close()

        phase, lines = asyncio.run(archived())
        assert (phase, lines) == ("Succeeded", ["hello", "archived"]), op.output()
        assert "archive: postgresql://" in op.output()
        # The Workflow and its pods are gone; `shoal logs` reads the archive instead.
        proc = subprocess.run(
            [sys.executable, "-m", "shoal.cli.main", "logs", "talks", "-n", namespace],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "KUBECONFIG": str(kubeconfig), "SHOAL_DATABASE_URL": dsn},
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == ["hello", "archived"]
        assert "archived run (Succeeded)" in proc.stderr
    finally:
        op.stop()


async def test_shoal_history_lists_archived_runs(
    pool: Any, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from shoal.cli.main import main

    done = {
        "phase": "Failed",
        "progress": "1/2",
        "startedAt": "2026-03-01T10:00:01Z",
        "finishedAt": "2026-03-01T10:00:31Z",
    }
    await store.save_run(pool, body("h1", "nightly"), done)
    await store.save_run(pool, body("h2", "adhoc", namespace="team-b"), {"phase": "Running"})
    argv = ["history", "--database-url", dsn, "-n", "team-a", "--phase", "Failed"]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["team-a", "nightly", "Failed", "1/2", "2026-03-01", "10:00:00", "30s"]
    assert len(out) == 2


async def test_archive_settings_apply_retention_and_the_run_log_cap(pool: Any, dsn: str) -> None:
    from shoal.archive.service import Archive, ArchiveSettings

    old = {"phase": "Succeeded", "finishedAt": "2020-01-01T00:00:00Z"}
    await store.save_run(pool, body("old", "wf"), old)
    settings = ArchiveSettings(ttl_days=30, max_run_log_chars=10)
    archive = await Archive.open(dsn, settings=settings)
    try:
        for n in range(5):
            archive.sink.write("u1", "a", 0, 1, f"line{n}")  # 5 characters each
        await archive.sink.drain()
        lines = [x.line for x in await reader.read_logs(pool, "u1")]
        assert lines[:2] == ["line0", "line1"]
        assert lines[2].startswith("[shoal] log size cap of 10 characters")
        assert len(lines) == 3
        async with asyncio.timeout(10):
            while await reader.get_run(pool, "old") is not None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await archive.close()


# -- the operator through a database restart, and reading runs back ---------------------

WORKER = "ghcr.io/shoal-dev/worker:0.1.0"


async def _archived(dsn: str, namespace: str, name: str) -> dict[str, Any] | None:
    """What the archive holds about the latest run `name`: run, log lines, attempts."""
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        try:
            run = await reader.find_run(conn, namespace, name)
        except asyncpg.UndefinedTableError:  # the operator has not migrated the schema yet
            return None
        if run is None:
            return None
        rows = await conn.fetch(
            "SELECT node, item_index, attempt, phase, exit_code, outputs FROM shoal_attempts"
            " WHERE workflow_uid = $1 ORDER BY node, item_index, attempt",
            run.uid,
        )
        lines = [x async for x in reader.iter_logs(conn, run.uid)]
        return {
            "run": run,
            "lines": [(x.node, x.index, x.line) for x in lines],
            "attempts": [
                (r["node"], r["item_index"], r["attempt"], r["phase"], r["exit_code"]) for r in rows
            ],
            "outputs": {(r["node"], r["item_index"], r["attempt"]): r["outputs"] for r in rows},
        }
    finally:
        await conn.close()


def archived_when(
    dsn: str, namespace: str, name: str, done: Any, timeout: float, what: str
) -> dict[str, Any]:
    from tests.cluster.conftest import wait_until

    def probe() -> dict[str, Any] | None:
        found = asyncio.run(_archived(dsn, namespace, name))
        return found if found is not None and done(found) else None

    result: dict[str, Any] = wait_until(probe, timeout, what)
    return result


def shoal_cli(kubeconfig: Path, dsn: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoal.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "SHOAL_DATABASE_URL": dsn},
    )


def _accounted(lines: list[str], expected: list[str]) -> tuple[set[str], int]:
    """Expected lines missing from `lines`, and how many the dropped markers declare."""
    declared = 0
    for line in lines:
        if line.startswith("[shoal] ") and "log lines dropped" in line:
            declared += int(line.split()[1])
    return set(expected) - set(lines), declared


@pytest.mark.cluster
def test_own_operator_keeps_archiving_through_a_database_restart(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    postgres: Any,
    dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.cluster.conftest import create_workflow, get_workflow, wait_workflow

    monkeypatch.setenv("SHOAL_DATABASE_URL", dsn)
    op = start_operator_for(kubeconfig, namespace, tmp_path)
    count = 150
    try:
        talk = f"for i in $(seq 1 {count}); do echo line $i; sleep 0.05; done"
        doc = {
            "apiVersion": "shoal.dev/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": "chatty"},
            "spec": {
                "image": WORKER,
                "activeDeadlineSeconds": 90,
                "nodes": [
                    {"name": "talk", "command": ["sh", "-c", talk]},
                    {
                        "name": "each",
                        "dependsOn": ["talk"],
                        "forEach": [1, 2, 3],
                        "command": ["sh", "-c", 'echo "item $1"', "each"],
                        "args": ["${{ item }}"],
                    },
                    {
                        "name": "greet",
                        "dependsOn": ["talk"],
                        "job": "greet",
                        "args": {"name": "db"},
                    },
                ],
            },
        }
        create_workflow(k8s_api, namespace, doc)
        archived_when(
            dsn,
            namespace,
            "chatty",
            lambda a: len(a["lines"]) >= 10,
            60,
            "the first log lines in the archive",
        )
        postgres.stop()
        try:
            talking = get_workflow(k8s_api, namespace, "chatty")["status"]["nodes"]["talk"]
            assert talking["phase"] == "Running", "the database went down after the log ended"
            # Reconciliation never waits on the database: a workflow started while it is
            # down runs to its end.
            quick = {
                "apiVersion": "shoal.dev/v1alpha1",
                "kind": "Workflow",
                "metadata": {"name": "while-down"},
                "spec": {
                    "image": WORKER,
                    "nodes": [{"name": "q", "job": "greet", "args": {"name": "x"}}],
                },
            }
            create_workflow(k8s_api, namespace, quick)
            quick_done = wait_workflow(k8s_api, namespace, "while-down", timeout=30)
            assert quick_done["status"]["phase"] == "Succeeded", quick_done["status"]
        finally:
            postgres.start()  # main thread: the server dies with the thread that starts it
        chatty = wait_workflow(k8s_api, namespace, "chatty", timeout=90)
        status = chatty["status"]
        assert status["phase"] == "Succeeded", status
        took = parse_rfc3339(status["finishedAt"]) - parse_rfc3339(status["startedAt"])
        assert took.total_seconds() < 45, status  # ~8 s of logging, then four short pods

        expected = [f"line {n}" for n in range(1, count + 1)]

        def complete(a: dict[str, Any]) -> bool:
            talked = [line for node, _, line in a["lines"] if node == "talk"]
            missing, declared = _accounted(talked, expected)
            return (
                a["run"].phase == "Succeeded"
                and len(a["attempts"]) == 5
                and len(missing) <= declared
                and any(node == "greet" for node, _, _ in a["lines"])
            )

        try:
            found = archived_when(dsn, namespace, "chatty", complete, 90, "the archive to catch up")
        except AssertionError:
            state = asyncio.run(_archived(dsn, namespace, "chatty"))
            raise AssertionError(f"{state}\n{op.output()}") from None
        talked = [line for node, _, line in found["lines"] if node == "talk"]
        missing, declared = _accounted(talked, expected)
        assert (missing, declared) == (set(), 0)  # the buffer holds far more: nothing dropped
        assert talked[0] == "line 1"
        assert found["attempts"] == [
            ("each", 0, 1, "Succeeded", 0),
            ("each", 1, 1, "Succeeded", 0),
            ("each", 2, 1, "Succeeded", 0),
            ("greet", 0, 1, "Succeeded", 0),
            ("talk", 0, 1, "Succeeded", 0),
        ]
        assert json.loads(found["outputs"][("greet", 0, 1)]) == {"message": "hello, db!"}
        assert sorted(line for node, _, line in found["lines"] if node == "each") == [
            "item 1",
            "item 2",
            "item 3",
        ]
        # The run finished while the database was down is recorded too.
        down = archived_when(
            dsn,
            namespace,
            "while-down",
            lambda a: a["run"].phase == "Succeeded" and a["attempts"],
            60,
            "the run made while the database was down",
        )
        assert down["attempts"] == [("q", 0, 1, "Succeeded", 0)]
        output = op.output()
        assert "archive: writing" in output, "the outage went unnoticed"
        assert "Traceback" not in output
    finally:
        op.stop()


def start_operator_for(kubeconfig: Path, namespace: str, tmp_path: Path) -> Any:
    from tests.cluster.conftest import start_operator

    return start_operator(kubeconfig, namespace, tmp_path / "operator.log")


def parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.cluster
def test_own_operator_get_and_resubmit_a_run_whose_workflow_is_gone(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shoal.cli.resubmit_command import FROM, FROM_UID
    from tests.cluster.conftest import (
        create_workflow,
        custom,
        get_workflow,
        wait_until,
        wait_workflow,
    )

    monkeypatch.setenv("SHOAL_DATABASE_URL", dsn)
    op = start_operator_for(kubeconfig, namespace, tmp_path)
    try:
        doc = {
            "apiVersion": "shoal.dev/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": "report", "labels": {"team": "data"}},
            "spec": {
                "image": WORKER,
                "parameters": {"name": "world"},
                "nodes": [
                    {"name": "hello", "job": "greet", "args": {"name": "${{ params.name }}"}},
                    {
                        "name": "each",
                        "job": "flaky",
                        "forEach": [1, 2],  # item 1 fails its first attempt
                        "itemArg": "succeed_on_attempt",
                        "retries": {"limit": 2, "backoffSeconds": 0},
                    },
                ],
            },
        }
        uid = create_workflow(k8s_api, namespace, doc)["metadata"]["uid"]
        done = wait_workflow(k8s_api, namespace, "report", timeout=90)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        archived_when(
            dsn,
            namespace,
            "report",
            lambda a: a["run"].phase == "Succeeded" and len(a["attempts"]) == 4,
            60,
            "the run and its four attempts in the archive",
        )
        custom(k8s_api).delete_namespaced_custom_object(
            "shoal.dev", "v1alpha1", namespace, "workflows", "report"
        )

        def gone() -> bool:
            try:
                get_workflow(k8s_api, namespace, "report")
            except Exception as err:
                return getattr(err, "status", None) == 404
            return False

        wait_until(gone, 60, "the Workflow to be deleted")

        # `shoal get` shows the archived run in the live layout.
        shown = shoal_cli(kubeconfig, dsn, "get", "report", "-n", namespace)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[:4] == [
            "Name:       report",
            f"Namespace:  {namespace}",
            lines[2],
            "Phase:      Succeeded",
        ]
        assert lines[2].startswith(f"Archived:   yes: the Workflow is gone (uid {uid}")
        rows = {
            line.split()[0]: line.split()[1:5]
            for line in lines
            if line.startswith(("hello", "each"))
        }
        assert rows["hello"] == ["Succeeded", "1", "-", "0"]
        assert rows["each"] == ["Succeeded", "3", "2/2", "0"]  # three attempts, two items
        assert '  hello.message = "hello, world!"' in lines
        assert "gone from the cluster" in shown.stderr

        as_json = shoal_cli(kubeconfig, dsn, "get", "report", "-n", namespace, "-o", "json")
        whole = json.loads(as_json.stdout)  # the whole object, and where it was read from
        assert (whole["status"]["phase"], whole["archived"]["uid"]) == ("Succeeded", uid)

        # Every attempt of every item, which the Workflow object never held.
        node = shoal_cli(kubeconfig, dsn, "get", "report", "-n", namespace, "--node", "each")
        assert node.returncode == 0, node.stderr
        table = [line.split()[:4] for line in node.stdout.splitlines() if line[:1].isdigit()]
        assert [row[:3] for row in table] == [
            ["0", "1", "Succeeded"],
            ["1", "1", "Failed"],
            ["1", "2", "Succeeded"],
        ]
        failed = shoal_cli(
            kubeconfig,
            dsn,
            "get",
            "report",
            "-n",
            namespace,
            "--node",
            "each",
            "--failed",
            "-o",
            "json",
        )
        attempts = json.loads(failed.stdout)["attempts"]
        assert [(a["item"], a["attempt"], a["phase"]) for a in attempts] == [(1, 1, "Failed")]
        assert "transient failure on attempt 1" in attempts[0]["message"]

        # The worker's ctx.log line is in the archived log too.
        logs = shoal_cli(kubeconfig, dsn, "logs", "report", "hello", "-n", namespace)
        assert logs.returncode == 0, logs.stderr
        assert "hello, world!" in logs.stdout.splitlines()

        missing = shoal_cli(kubeconfig, dsn, "get", "nope", "-n", namespace)
        assert missing.returncode == 1
        assert missing.stderr.strip() == (
            f"error: workflow 'nope' not found in namespace '{namespace}' (cluster) nor in "
            "the archive"
        )

        # Resubmit the deleted run with another parameter.
        again = shoal_cli(
            kubeconfig, dsn, "resubmit", "report", "-n", namespace, "-p", "name=Ada", "-o", "name"
        )
        assert again.returncode == 0, again.stderr
        new_name = again.stdout.strip()
        assert new_name.startswith("report-")
        new = wait_workflow(k8s_api, namespace, new_name, timeout=90)
        assert new["status"]["phase"] == "Succeeded", new["status"]
        assert new["status"]["nodes"]["hello"]["outputs"] == {"message": "hello, Ada!"}
        assert new["spec"]["parameters"] == {"name": "Ada"}
        meta = new["metadata"]
        assert meta["labels"] == {"team": "data", FROM: "report"}
        assert meta["annotations"][FROM] == f"{namespace}/report"
        assert meta["annotations"][FROM_UID] == uid

        # A Workflow still in the cluster is resubmitted from there, under a given name.
        live = shoal_cli(
            kubeconfig, dsn, "resubmit", new_name, "-n", namespace, "--name", "report-again"
        )
        assert live.returncode == 0, live.stderr
        assert live.stdout.startswith(
            f"workflow report-again created in namespace {namespace}: resubmitted from "
            f"{new_name}, read from the cluster"
        )
        third = wait_workflow(k8s_api, namespace, "report-again", timeout=90)
        assert third["status"]["nodes"]["hello"]["outputs"] == {"message": "hello, Ada!"}
        # --node of a live workflow: its status, and its finished attempts from the archive.
        archived_when(
            dsn,
            namespace,
            "report-again",
            lambda a: len(a["attempts"]) == 4,
            60,
            "the attempts of report-again",
        )
        live_node = shoal_cli(
            kubeconfig, dsn, "get", "report-again", "-n", namespace, "--node", "hello"
        )
        assert live_node.returncode == 0, live_node.stderr
        out = live_node.stdout.splitlines()
        assert out[0] == f"Workflow:   report-again in {namespace}"
        assert [line.split()[:3] for line in out if line.startswith("-")] == [
            ["-", "1", "Succeeded"]
        ]
        assert '  hello#1.message = "hello, Ada!"' in out
        taken = shoal_cli(
            kubeconfig, dsn, "resubmit", new_name, "-n", namespace, "--name", "report-again"
        )
        assert taken.returncode == 1
        assert "already exists" in taken.stderr
    finally:
        op.stop()


@pytest.mark.cluster
def test_own_operator_killed_mid_log_archives_every_line_once(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An operator SIGKILLed while a pod logs: its successor reads the log from the start
    again. Every line is in the archive exactly once (before, 32% were doubled)."""
    from tests.cluster.conftest import create_workflow, start_operator, wait_workflow

    monkeypatch.setenv("SHOAL_DATABASE_URL", dsn)
    count = 300
    talk = f"for i in $(seq 1 {count}); do echo line $i; sleep 0.03; done"
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "twice"},
        "spec": {"image": WORKER, "nodes": [{"name": "talk", "command": ["sh", "-c", talk]}]},
    }
    op = start_operator_for(kubeconfig, namespace, tmp_path)
    try:
        create_workflow(k8s_api, namespace, doc)
        archived_when(
            dsn,
            namespace,
            "twice",
            lambda a: len(a["lines"]) >= 50,
            60,
            "the first 50 lines in the archive",
        )
        op.kill()
        op = start_operator(kubeconfig, namespace, tmp_path / "operator-2.log")
        status = wait_workflow(k8s_api, namespace, "twice", timeout=90)["status"]
        assert status["phase"] == "Succeeded", status
        expected = [f"line {n}" for n in range(1, count + 1)]
        found = archived_when(
            dsn,
            namespace,
            "twice",
            lambda a: len(a["lines"]) >= count,
            60,
            "every line in the archive",
        )
        assert [line for _, _, line in found["lines"]] == expected
    finally:
        op.stop()
