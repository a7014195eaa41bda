"""`helm install --set replicas=N`: sharded replicas, named by their pods, with leases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.test_chart import docs, helm, render

__all__ = ["helm"]

pytestmark = pytest.mark.cluster


def test_replicas_above_one_render_sharded_replicas_with_lease_rbac(helm: Path) -> None:
    rendered = docs(render(helm, "shoal", "ops", "--set", "replicas=3"))
    deploy = next(d for d in rendered if d["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["SHOAL_SHARDS"]["value"] == "32"
    assert float(env["SHOAL_RENEW_DEADLINE"]["value"]) < float(env["SHOAL_LEASE_DURATION"]["value"])
    roles = [
        d for d in rendered if d["kind"] == "Role" and d["metadata"]["name"].endswith("-shards")
    ]
    (role,) = roles
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update", "delete"],
        }
    ]


def test_one_replica_stays_unsharded(helm: Path) -> None:
    rendered = docs(render(helm, "shoal", "ops"))
    deploy = next(d for d in rendered if d["kind"] == "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert "SHOAL_SHARDS" not in {e["name"] for e in container["env"]}
    assert not [
        d for d in rendered if d["kind"] == "Role" and d["metadata"]["name"].endswith("-shards")
    ]
