"""The dashboard's Archive page in a real browser: a finished run whose Workflow is gone
(seeded into PostgreSQL as the operator archives one), searched, opened, and its node's
log read; the run of a namespace the user may not list never shows.

The server reads the archive with `--database-url`, and answers `/api/v1/archive/...`
only after a per-caller access review (docs/dashboard.md, "The archive").
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from tests.cluster.test_server import READ, WRITE, _user, running_server
from tests.cluster.test_ui import LIVE_SECONDS, browser
from tests.support.browser import screenshot

__all__ = ["browser"]

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a thread of its own: sync Playwright keeps an event
    loop running on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=120)


async def _seed(dsn: str, runs: dict[str, str]) -> dict[str, str]:
    """One finished run per namespace in `runs` (name -> namespace), with log lines."""
    from shoal.archive.db import open_pool
    from shoal.archive.store import save_run

    pool = await open_pool(dsn)
    uids: dict[str, str] = {}
    try:
        for name, namespace in runs.items():
            uid = uids[name] = str(uuid.uuid4())
            body = {
                "metadata": {
                    "uid": uid,
                    "name": name,
                    "namespace": namespace,
                    "labels": {"app": "ui-archive"},
                    "creationTimestamp": T0.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "spec": {"nodes": [{"name": "talk", "command": ["true"]}]},
            }
            status = {"phase": "Failed", "progress": "1/1", "nodes": {"talk": {"phase": "Failed"}}}
            await save_run(pool, body, status)
            async with pool.acquire() as conn:
                await conn.executemany(
                    "INSERT INTO shoal_log_lines (workflow_uid, node, item_index, attempt, at,"
                    " line) VALUES ($1, 'talk', 0, 1, $2, $3)",
                    [(uid, T0, f"{name} said {i}") for i in range(3)],
                )
    finally:
        await pool.close()
    return uids


def test_archive_page_opens_a_gone_runs_log(
    browser: Any, crds: None, k8s_api: Any, kubeconfig: Path, postgres: Any
) -> None:
    from kubernetes import client
    from playwright.sync_api import expect

    database = f"ui_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres.dsn, timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _run(admin(f"CREATE DATABASE {database}"))
    dsn = postgres.dsn.rsplit("/", 1)[0] + "/" + database
    core = client.CoreV1Api(k8s_api)
    suffix = secrets.token_hex(3)
    mine, other = f"ui-arch-a-{suffix}", f"ui-arch-b-{suffix}"
    for ns in (mine, other):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        token = _user(k8s_api, mine, "reader", WRITE, writer=True)
        _user(k8s_api, other, "other", READ, writer=False)
        uids = _run(_seed(dsn, {"gone-run": mine, "not-yours": other}))
        with running_server(kubeconfig, "--database-url", dsn) as (url, log):
            context = browser.new_context(viewport={"width": 1360, "height": 720})
            try:
                page = context.new_page()
                page.goto(f"{url}/#/archive")
                page.fill("#token", token)
                page.click("#login button[type=submit]")
                row = page.locator(f'#archive tr[data-uid="{uids["gone-run"]}"]')
                expect(row).to_contain_text("gone-run", timeout=LIVE_SECONDS)
                expect(row).to_contain_text("Failed")
                expect(page.locator(f'#archive tr[data-uid="{uids["not-yours"]}"]')).to_have_count(
                    0
                )
                row.get_by_role("link", name="gone-run").click()
                page.locator('#archive-run tr[data-node="talk"]').get_by_role("button").click()
                expect(page.locator("#archive-log")).to_contain_text("gone-run said 2")
                screenshot(page, "dashboard-archive")
            finally:
                context.close()
            assert token not in log.read_text()
    finally:
        for ns in (mine, other):
            with contextlib.suppress(Exception):
                core.delete_namespace(ns, propagation_policy="Background")
        _run(admin(f"DROP DATABASE {database} WITH (FORCE)"))
