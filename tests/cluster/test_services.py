"""The real MinIO and PostgreSQL session fixtures start and work."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.minio
def test_minio_put_and_get(minio: Any) -> None:
    s3 = minio.client()
    s3.create_bucket(Bucket="tier-check")
    s3.put_object(Bucket="tier-check", Key="a/b.json", Body=b'{"ok": true}')
    body = s3.get_object(Bucket="tier-check", Key="a/b.json")["Body"].read()
    assert body == b'{"ok": true}'
    listed = s3.list_objects_v2(Bucket="tier-check", Prefix="a/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/b.json"]


@pytest.mark.postgres
async def test_postgres_connect_and_query(postgres: Any) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres.dsn, timeout=10)
    try:
        await conn.execute("CREATE TABLE runs (id serial PRIMARY KEY, name text NOT NULL)")
        await conn.executemany("INSERT INTO runs (name) VALUES ($1)", [("a",), ("b",)])
        rows = await conn.fetch("SELECT name FROM runs ORDER BY id")
        assert [r["name"] for r in rows] == ["a", "b"]
        assert (await conn.fetchval("SHOW server_version")).split(".")[0].isdigit()
    finally:
        await conn.close()
