"""memoize with the archive configured: the cache is PostgreSQL's `shoal_memo` table,
shared by a namespace's Workflows, bounded per namespace, with maxAge honoured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shoal.archive import memo
from tests.cluster.test_archive import dsn, pool  # noqa: F401  (fixtures)
from tests.cluster.test_sync import memoized

pytestmark = pytest.mark.postgres


async def test_entries_are_shared_per_namespace_aged_and_bounded(
    pool: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await memo.memo_lookup(pool, "a", "k", 60, 100.0) is None
    assert await memo.memo_store(pool, "a", "k", {"v": [1, 2]}, 100.0, "a/wf") is None
    assert await memo.memo_lookup(pool, "a", "k", 60, 159.0) == {"v": [1, 2]}
    assert await memo.memo_lookup(pool, "a", "k", 60, 161.0) is None  # older than maxAge
    assert await memo.memo_lookup(pool, "b", "k", 60, 120.0) is None  # another namespace
    note = await memo.memo_store(pool, "a", "big", {"v": "x" * 100_000}, 1.0, "a/wf")
    assert note is not None
    assert "entry bound" in note
    monkeypatch.setattr(memo, "MAX_ARCHIVED_MEMO_ENTRIES", 3)
    for i in range(5):
        await memo.memo_store(pool, "c", f"k{i}", {"i": i}, 200.0 + i, "c/wf")
    assert await memo.memo_lookup(pool, "c", "k0", 1e6, 300.0) is None  # evicted
    assert await memo.memo_lookup(pool, "c", "k4", 1e6, 300.0) == {"i": 4}
    rows = await pool.fetchval("SELECT count(*) FROM shoal_memo WHERE namespace = 'c'")
    assert rows == 3


@pytest.mark.cluster
def test_own_operator_with_the_archive_memoizes_across_workflows_in_the_database(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    dsn: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    import asyncpg
    from kubernetes import client

    from tests.cluster.conftest import create_workflow, start_operator, wait_workflow

    monkeypatch.setenv("SHOAL_DATABASE_URL", dsn)
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
    counter = tmp_path / "runs"
    nodes = []
    try:
        for name in ("first", "second"):
            create_workflow(k8s_api, namespace, memoized(name, counter))
            body = wait_workflow(k8s_api, namespace, name, timeout=120)
            assert body["status"]["phase"] == "Succeeded", op.output()
            nodes.append(body["status"]["nodes"]["price"])
    finally:
        op.stop()
    assert [n["memoized"]["hit"] for n in nodes] == [False, True]
    assert counter.read_text().split() == ["ran"]

    async def rows() -> list[Any]:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            return list(await conn.fetch("SELECT namespace, key, workflow FROM shoal_memo"))
        finally:
            await conn.close()

    found = [tuple(r) for r in asyncio.run(rows())]
    assert found == [(namespace, "price-2026-12-07", f"{namespace}/first")]
    leases = client.CoordinationV1Api(k8s_api).list_namespaced_lease(namespace).items
    assert "shoal-memo" not in {lease.metadata.name for lease in leases}
