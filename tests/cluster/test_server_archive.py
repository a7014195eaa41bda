"""The archive through the REST API, as two RBAC users: search, one run, its attempts and
logs, resubmitting a run whose Workflow is gone. The server reads PostgreSQL with its own
credentials, so each read must first be authorized for the caller: no archived run of
namespace B is ever returned to the user of namespace A.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shoal.reruns import FROM
from tests.cluster.test_server import READ, WRITE, Server, _user, running_server, server, workflow
from tests.support.plugin import Kubectl

__all__ = ["server"]

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


@dataclass
class Archived:
    api: Server
    uids: dict[str, str]
    dsn: str


async def _seed(dsn: str, namespaces: dict[str, str]) -> dict[str, str]:
    """Three finished runs (two in A, one in B), and log lines of A's first."""
    from shoal.archive.db import open_pool
    from shoal.archive.store import save_attempt, save_run

    pool = await open_pool(dsn)
    uids: dict[str, str] = {}
    runs = (
        ("arch-a-1", "a", "Succeeded", {"team": "blue"}, 0),
        ("arch-a-2", "a", "Failed", {"team": "red"}, 1),
        ("arch-b-1", "b", "Succeeded", {"team": "blue"}, 2),
    )
    try:
        for name, user, phase, labels, minutes in runs:
            uid = str(uuid.uuid4())
            uids[name] = uid
            created = (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = {
                "metadata": {
                    "uid": uid,
                    "name": name,
                    "namespace": namespaces[user],
                    "labels": labels,
                    "creationTimestamp": created,
                },
                "spec": {**workflow(name)["spec"], "parameters": {"day": "mon"}},
            }
            status = {"phase": phase, "progress": "1/1", "nodes": {"hello": {"phase": phase}}}
            await save_run(pool, body, status)
        for attempt, (phase, code) in enumerate((("Failed", 3), ("Succeeded", 0)), start=1):
            await save_attempt(
                pool, uids["arch-a-2"], "hello", 0, attempt, phase=phase, exit_code=code
            )
        async with pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO shoal_log_lines (workflow_uid, node, item_index, attempt, at, line)"
                " VALUES ($1, 'hello', 0, 1, $2, $3)",
                [(uids["arch-a-1"], T0, f"line {i}") for i in range(5)],
            )
    finally:
        await pool.close()
    return uids


@pytest.fixture(scope="module")
def archived(crds: None, kubeconfig: Path, k8s_api: Any, postgres: Any) -> Iterator[Archived]:
    from kubernetes import client

    database = f"srv_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres.dsn, timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {database}"))
    dsn = postgres.dsn.rsplit("/", 1)[0] + "/" + database
    core = client.CoreV1Api(k8s_api)
    suffix = secrets.token_hex(3)
    namespaces = {"a": f"srv-arch-a-{suffix}", "b": f"srv-arch-b-{suffix}"}
    for ns in namespaces.values():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    tokens = {
        "a": _user(k8s_api, namespaces["a"], "user-a", WRITE, writer=True),
        "b": _user(k8s_api, namespaces["b"], "user-b", READ, writer=False),
    }
    uids = asyncio.run(_seed(dsn, namespaces))
    try:
        with running_server(kubeconfig, "--database-url", dsn) as (url, log):
            yield Archived(Server(url, log, tokens, namespaces), uids, dsn)
    finally:
        for ns in namespaces.values():
            with contextlib.suppress(Exception):
                core.delete_namespace(ns, propagation_policy="Background")
        asyncio.run(admin(f"DROP DATABASE {database} WITH (FORCE)"))


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["metadata"]["name"] for row in response.json()["items"]]


def test_search_returns_only_the_namespaces_the_caller_may_list(archived: Archived) -> None:
    api, (a, b) = archived.api, (archived.api.namespaces["a"], archived.api.namespaces["b"])
    assert _names(api.call("GET", "/api/v1/archive/workflows", "a")) == ["arch-a-2", "arch-a-1"]
    assert _names(api.call("GET", "/api/v1/archive/workflows", "b")) == ["arch-b-1"]
    # Filters that would match B's run still never return it to A.
    blue = "/api/v1/archive/workflows?labelSelector=team%3Dblue"
    assert _names(api.call("GET", blue, "a")) == ["arch-a-1"]
    assert _names(api.call("GET", "/api/v1/archive/workflows?namePrefix=arch-b", "a")) == []
    denied = api.call("GET", f"/api/v1/archive/workflows?namespace={b}", "a")
    assert denied.status_code == 403
    assert "list" in denied.json()["message"]
    assert "workflows" in denied.json()["message"]
    failed = api.call("GET", f"/api/v1/archive/workflows?namespace={a}&phase=Failed", "a")
    assert _names(failed) == ["arch-a-2"]
    first = api.call("GET", f"/api/v1/archive/workflows?namespace={a}&limit=1", "a")
    assert _names(first) == ["arch-a-2"]
    token = first.json()["continue"]
    assert token
    rest = api.call("GET", f"/api/v1/archive/workflows?namespace={a}&limit=1&continue={token}", "a")
    assert _names(rest) == ["arch-a-1"]
    assert rest.json()["continue"] is None
    bad = api.call("GET", "/api/v1/archive/workflows?continue=nonsense", "a")
    assert bad.status_code == 400
    forged = api.call(
        "GET", "/api/v1/archive/workflows", None, headers={"Authorization": "Bearer forged"}
    )
    assert forged.status_code == 401
    assert forged.json()["code"] == "Unauthorized"


def test_one_run_and_its_logs_as_rbac_allows(archived: Archived) -> None:
    api, uids = archived.api, archived.uids
    a, b = api.namespaces["a"], api.namespaces["b"]
    mine = api.call("GET", f"/api/v1/archive/workflows/{a}/{uids['arch-a-1']}", "a")
    assert mine.status_code == 200, mine.text
    assert mine.json()["status"]["phase"] == "Succeeded"
    assert mine.json()["spec"]["parameters"] == {"day": "mon"}
    assert (
        api.call("GET", f"/api/v1/archive/workflows/{b}/{uids['arch-b-1']}", "a").status_code == 403
    )
    # B's run asked for under A's namespace: not there (and nothing of it is shown).
    hidden = api.call("GET", f"/api/v1/archive/workflows/{a}/{uids['arch-b-1']}", "a")
    assert hidden.status_code == 404
    assert "arch-b-1" not in hidden.text
    log = f"/api/v1/archive/workflows/{a}/{uids['arch-a-1']}/nodes/hello/log"
    page = api.call("GET", f"{log}?limit=3", "a")
    assert page.status_code == 200, page.text
    assert [line["text"] for line in page.json()["lines"]] == ["line 0", "line 1", "line 2"]
    after = page.json()["nextAfter"]
    rest = api.call("GET", f"{log}?after={after}", "a").json()
    assert [line["text"] for line in rest["lines"]] == ["line 3", "line 4"]
    assert rest["nextAfter"] is None
    attempts = f"/api/v1/archive/workflows/{a}/{uids['arch-a-2']}/nodes/hello/attempts"
    tried = api.call("GET", attempts, "a")
    assert tried.status_code == 200, tried.text
    rows = [(r["attempt"], r["phase"], r["exitCode"]) for r in tried.json()["items"]]
    assert rows == [(1, "Failed", 3), (2, "Succeeded", 0)]
    assert api.call("GET", attempts, "b").status_code == 403
    # B may read Workflows in B but not pods/log: no archived log either.
    theirs = f"/api/v1/archive/workflows/{b}/{archived.uids['arch-b-1']}/nodes/hello/log"
    refused = api.call("GET", theirs, "b")
    assert refused.status_code == 403
    assert "pods/log" in refused.json()["message"]
    assert api.call("GET", log, "b").status_code == 403


def test_resubmit_reads_a_gone_workflow_from_the_archive(
    archived: Archived, kubectl: Kubectl
) -> None:
    api = archived.api
    a = api.namespaces["a"]
    made = api.call(
        "POST",
        f"/api/v1/workflows/{a}/arch-a-2/resubmit",
        "a",
        json={"parameters": {"day": "fri"}, "name": "arch-a-2-again"},
    )
    assert made.status_code == 201, made.text
    assert "archive" in made.json()["message"]
    seen = kubectl(
        "get", "workflow", "arch-a-2-again", "-o", "jsonpath={.spec.parameters.day}", namespace=a
    )
    assert seen.stdout == "fri"
    labels = kubectl(
        "get", "workflow", "arch-a-2-again", "-o", "jsonpath={.metadata.labels}", namespace=a
    )
    assert f'"{FROM}":"arch-a-2"' in labels.stdout
    # The user of B cannot read B's run out of A's namespace by name either.
    assert api.call("POST", f"/api/v1/workflows/{a}/arch-b-1/resubmit", "b").status_code == 403


def test_the_dsn_never_reaches_the_log_or_a_response(archived: Archived) -> None:
    """Runs after the tests above in this module: their responses are searched too."""
    log = archived.api.log.read_text(errors="replace")
    assert "archive: configured" in log
    database = archived.dsn.rsplit("/", 1)[1]
    assert database not in log
    for response in archived.api.seen:
        assert database not in response.text


def test_without_an_archive_the_routes_say_so(server: Server) -> None:
    a = server.namespaces["a"]
    for path in ("/api/v1/archive/workflows", f"/api/v1/archive/workflows/{a}/0a1b"):
        answer = server.call("GET", path, "a")
        assert answer.status_code == 404
        assert answer.json()["code"] == "archive-not-configured"
