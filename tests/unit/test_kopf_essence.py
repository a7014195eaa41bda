"""kopf's essence of a Workflow is the same with the lean storage, and its status is
never copied to make it (a status write is one Workflow event: about one per three
fan-out items)."""

from __future__ import annotations

import copy
from typing import Any

import kopf

from shoal.kube.kopf_essence import LeanDiffBaseStorage


class NotCopyable:
    def __deepcopy__(self, memo: dict[int, Any]) -> NotCopyable:
        raise AssertionError("the status was deep-copied")


def workflow(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": "w",
            "namespace": "a",
            "uid": "u1",
            "resourceVersion": "42",
            "labels": {"team": "x"},
            "annotations": {
                "note": "kept",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "shoal.dev/last-handled-configuration": '{"spec": {}}',
            },
            "managedFields": [{"manager": "shoal", "fieldsV1": {"f:status": {}}}],
            "finalizers": ["shoal.dev/finalizer"],
        },
        "spec": {"nodes": [{"name": "fan", "forEach": list(range(50))}]},
        "status": status,
    }


def test_the_essence_is_kopfs_own() -> None:
    body = workflow({"phase": "Running", "nodes": {"fan": {"items": {"succeeded": 3}}}})
    stock = kopf.AnnotationsDiffBaseStorage(prefix="shoal.dev")
    lean = LeanDiffBaseStorage(prefix="shoal.dev")
    got = lean.build(body=kopf.Body(copy.deepcopy(body)))
    assert got == stock.build(body=kopf.Body(body))
    assert got["spec"] == body["spec"]
    assert got["metadata"] == {"labels": {"team": "x"}, "annotations": {"note": "kept"}}


def test_the_status_is_not_copied_and_the_body_not_changed() -> None:
    body = workflow({"phase": "Running", "big": [NotCopyable()]})
    before = dict(body)
    essence = LeanDiffBaseStorage(prefix="shoal.dev").build(body=kopf.Body(body))
    assert "status" not in essence
    assert body == before
    assert "managedFields" in body["metadata"]


def test_a_spec_change_shows_and_a_status_change_does_not() -> None:
    lean = LeanDiffBaseStorage(prefix="shoal.dev")
    old = lean.build(body=kopf.Body(workflow({"phase": "Running"})))
    assert lean.build(body=kopf.Body(workflow({"phase": "Succeeded"}))) == old
    changed = workflow({"phase": "Running"})
    changed["spec"]["stop"] = True
    new = lean.build(body=kopf.Body(changed))
    assert new != old
    assert new["spec"]["stop"] is True
