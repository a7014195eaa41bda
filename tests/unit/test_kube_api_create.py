"""Creation is idempotent, and the AlreadyExists metric counts only real clashes.

`shoal_api_already_exists` is what an operator of a sharded install watches for a
hand-off that went wrong (two replicas creating the same Job). Shared Leases that every
replica creates when missing lose that race by design and must not count.
"""

from __future__ import annotations

import json

import httpx

from shoal.kube.api import Credentials, KubeApi

EXISTS = {"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "exists"}


def api_answering(status: int, body: dict[str, object]) -> KubeApi:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode())

    api = KubeApi(Credentials("https://kube.invalid", False, "t", None))
    api._client = httpx.AsyncClient(
        base_url="https://kube.invalid", transport=httpx.MockTransport(handler)
    )
    return api


async def test_a_job_that_already_exists_is_none_and_counted() -> None:
    api = api_answering(409, EXISTS)
    try:
        got = await api.create("/apis/batch/v1/namespaces/a/jobs", {"metadata": {"name": "j"}})
    finally:
        await api.close()
    assert got is None
    assert api.already_exists == 1


async def test_a_contended_lease_that_already_exists_is_none_and_not_counted() -> None:
    api = api_answering(409, EXISTS)
    path = "/apis/coordination.k8s.io/v1/namespaces/a/leases"
    try:
        got = await api.create(path, {"metadata": {"name": "shoal-locks"}}, contended=True)
    finally:
        await api.close()
    assert got is None
    assert api.already_exists == 0


async def test_a_created_object_is_returned_and_nothing_counted() -> None:
    api = api_answering(201, {"metadata": {"name": "j", "uid": "u1"}})
    try:
        got = await api.create("/apis/batch/v1/namespaces/a/jobs", {"metadata": {"name": "j"}})
    finally:
        await api.close()
    assert got == {"metadata": {"name": "j", "uid": "u1"}}
    assert api.already_exists == 0
