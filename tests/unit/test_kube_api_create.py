"""Creation is idempotent, and the AlreadyExists metric counts only real clashes.

`shoal_api_already_exists` is what an operator of a sharded install watches for a
hand-off that went wrong (two replicas creating the same Job). Shared Leases that every
replica creates when missing lose that race by design and must not count.
"""

from __future__ import annotations

import json

from tests.unit.kube_server import api_answering

EXISTS = {"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "exists"}


async def test_a_job_that_already_exists_is_none_and_counted() -> None:
    async with api_answering(json.dumps(EXISTS).encode(), 409) as api:
        got = await api.create("/apis/batch/v1/namespaces/a/jobs", {"metadata": {"name": "j"}})
    assert got is None
    assert api.already_exists == 1


async def test_a_contended_lease_that_already_exists_is_none_and_not_counted() -> None:
    path = "/apis/coordination.k8s.io/v1/namespaces/a/leases"
    async with api_answering(json.dumps(EXISTS).encode(), 409) as api:
        got = await api.create(path, {"metadata": {"name": "shoal-locks"}}, contended=True)
    assert got is None
    assert api.already_exists == 0


async def test_a_created_object_is_returned_and_nothing_counted() -> None:
    created = {"metadata": {"name": "j", "uid": "u1"}}
    async with api_answering(json.dumps(created).encode(), 201) as api:
        got = await api.create("/apis/batch/v1/namespaces/a/jobs", {"metadata": {"name": "j"}})
    assert got == {"metadata": {"name": "j", "uid": "u1"}}
    assert api.already_exists == 0
