"""Offloaded output values: written by size, read back exactly, resolved in arguments."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from shoal_worker.artifacts import ArtifactCorrupted, LocalArtifactStore
from shoal_worker.context import Context
from shoal_worker.offload import (
    Offloader,
    ValueRef,
    iter_items,
    load_value,
    output_key,
    resolve_values,
    store_list,
    store_value,
)

ENV = {
    "SHOAL_NAMESPACE": "team-a",
    "SHOAL_WORKFLOW": "nightly",
    "SHOAL_WORKFLOW_UID": "1234",
    "SHOAL_NODE": "split",
    "SHOAL_ITEM_INDEX": "7",
    "SHOAL_ATTEMPT": "2",
}


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


def test_small_outputs_stay_inline_and_large_ones_become_references(
    store: LocalArtifactStore,
) -> None:
    offload = Offloader(lambda: store, ENV, threshold=100)

    assert offload("small", {"a": 1}) == {"a": 1}
    rows = [{"id": i, "name": f"row {i}"} for i in range(1000)]
    reference = offload("rows", rows)

    ref = ValueRef.parse(reference)
    assert ref is not None
    assert ref.format == "jsonl"
    assert ref.count == 1000
    assert ref.ref.key == "team-a/nightly/1234/split/7/2/output.rows"
    assert len(str(reference)) < 300
    assert load_value(store, ref) == rows


def test_a_large_non_list_is_one_json_document(store: LocalArtifactStore) -> None:
    value = {"text": "é" * 5000, "n": [1.5, None, True]}
    ref = store_value(store, "k/doc", value)
    assert ref.format == "json"
    assert ref.count is None
    assert load_value(store, ref) == value


def test_a_list_streams_back_item_by_item_without_loading_the_whole(
    store: LocalArtifactStore,
) -> None:
    ref = store_list(store, "k/gen", ({"i": i} for i in range(100_000)))  # a generator
    assert ref.count == 100_000
    items = iter_items(store, ref)
    assert next(items) == {"i": 0}
    assert sum(1 for _ in items) == 99_999


def test_a_corrupted_list_is_reported_as_corrupted(store: LocalArtifactStore) -> None:
    ref = store_list(store, "k/list", list(range(1000)))
    path = store.root / "k" / "list"
    path.write_bytes(path.read_bytes().replace(b"999", b"998"))
    with pytest.raises(ArtifactCorrupted, match="corrupted"):
        load_value(store, ref)


def test_arguments_resolve_value_references_anywhere_but_leave_file_references(
    store: LocalArtifactStore,
) -> None:
    big = store_value(store, "k/big", list(range(10))).as_output()
    doc = store_value(store, "k/doc", {"x": 1}).as_output()
    saved_file = store.put_bytes("k/file", b"raw").as_output()
    args: dict[str, Any] = {"big": big, "nested": {"items": [doc, 3]}, "file": saved_file}

    resolved = resolve_values(args, lambda: store)

    assert resolved == {
        "big": list(range(10)),
        "nested": {"items": [{"x": 1}, 3]},
        "file": saved_file,
    }


def test_arguments_without_references_never_open_the_store() -> None:
    def no_store() -> Any:
        raise AssertionError("the store was opened")

    args = {"a": [1, {"b": "c"}], "d": {"$artifact": "not a reference body"}}
    assert resolve_values(args, no_store) == args


def test_output_keys_are_readable_and_path_safe() -> None:
    env = {**ENV, "SHOAL_NODE": "a/b", "SHOAL_ITEM_INDEX": ""}
    assert output_key(env, "x y") == "team-a/nightly/1234/a_b/-/2/output.x_y"
    assert output_key({}, "rows") == "local/local/local/local/-/1/output.rows"


def test_saved_artifacts_cannot_take_the_name_of_an_offloaded_output(
    store: LocalArtifactStore,
) -> None:
    ctx = Context({}, stream=io.StringIO(), env=ENV, artifact_store=lambda: store)
    with pytest.raises(ValueError, match="reserved for outputs"):
        ctx.save_artifact("output.rows", b"x")
    assert ctx.save_artifact("rows.json", b"x").key == "team-a/nightly/1234/split/7/2/rows.json"


def test_the_entrypoint_shares_one_store_with_the_job(store: LocalArtifactStore) -> None:
    opened: list[LocalArtifactStore] = []

    def factory() -> LocalArtifactStore:
        opened.append(store)
        return store

    ctx = Context({}, stream=io.StringIO(), env=ENV, artifact_store=factory)
    assert opened == []  # opened on first use only
    ctx.save_artifact("a", b"1")
    ctx.save_artifact("b", b"2")
    assert opened == [store]
