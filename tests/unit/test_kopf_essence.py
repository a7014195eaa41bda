"""kopf's essence of a Workflow is the same with the lean storages, and neither its status
nor its spec is deep-copied to make it (a status write is one Workflow event: about one
per three fan-out items, and a fan-out's spec may hold thousands of items)."""

from __future__ import annotations

import copy
from typing import Any

import kopf

from shoal.kube.kopf_essence import LeanDiffBaseStorage, LeanProgressStorage

PREFIX = "shoal.dev"


class NotCopyable(list[int]):
    """A list whose deep copy fails the test."""

    def __deepcopy__(self, memo: dict[int, Any]) -> NotCopyable:
        raise AssertionError("deep-copied")


def workflow(status: dict[str, Any], items: list[int] | None = None) -> dict[str, Any]:
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
                f"{PREFIX}/last-handled-configuration": '{"spec": {}}',
                f"{PREFIX}/fan": '{"started": "2026-01-01T00:00:00Z"}',
            },
            "managedFields": [{"manager": "shoal", "fieldsV1": {"f:status": {}}}],
            "finalizers": ["shoal.dev/finalizer"],
        },
        "spec": {"nodes": [{"name": "fan", "forEach": items if items is not None else [1, 2]}]},
        "status": status,
    }


def essence(body: dict[str, Any], *, lean: bool) -> kopf.BodyEssence:
    """kopf's steps for the new essence: build, then clear its progress annotations."""
    if lean:
        diffbase, progress = LeanDiffBaseStorage(prefix=PREFIX), LeanProgressStorage(prefix=PREFIX)
    else:
        diffbase = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX)
        progress = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    return progress.clear(essence=diffbase.build(body=kopf.Body(body)))


def test_the_essence_is_kopfs_own() -> None:
    body = workflow({"phase": "Running", "nodes": {"fan": {"items": {"succeeded": 3}}}})
    got = essence(copy.deepcopy(body), lean=True)
    assert got == essence(body, lean=False)
    assert got["spec"] == body["spec"]
    assert got["metadata"] == {"labels": {"team": "x"}, "annotations": {"note": "kept"}}


def test_neither_status_nor_spec_is_copied_and_the_body_is_unchanged() -> None:
    body = workflow({"phase": "Running", "big": NotCopyable(range(3))}, NotCopyable(range(500)))
    before = copy.deepcopy({**body, "status": {}, "spec": {}})
    got = essence(body, lean=True)
    assert "status" not in got
    assert got["spec"]["nodes"][0]["forEach"] == list(range(500))
    assert {**body, "status": {}, "spec": {}} == before  # metadata and annotations intact


def test_a_spec_change_shows_and_a_status_change_does_not() -> None:
    old = essence(workflow({"phase": "Running"}), lean=True)
    assert essence(workflow({"phase": "Succeeded"}), lean=True) == old
    changed = workflow({"phase": "Running"})
    changed["spec"]["stop"] = True
    new = essence(changed, lean=True)
    assert new != old
    assert new["spec"]["stop"] is True
