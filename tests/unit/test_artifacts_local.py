"""The local artifact store: what `shoal run` uses, and the reference for the S3 store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shoal_worker.artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    LocalArtifactStore,
    artifact_key,
)


def test_key_is_readable_and_separates_runs_items_and_attempts() -> None:
    key = artifact_key("team-a", "nightly", "uid-1", "integration", 7, 2, "report.csv")
    assert key == "team-a/nightly/uid-1/integration/7/2/report.csv"
    other_run = artifact_key("team-a", "nightly", "uid-2", "integration", 7, 2, "report.csv")
    plain = artifact_key("team-a", "nightly", "uid-1", "integration", None, 2, "report.csv")
    assert len({key, other_run, plain}) == 3


def test_key_segments_cannot_traverse() -> None:
    key = artifact_key("ns", "wf", "u", "node", None, 1, "../../etc/passwd")
    assert ".." not in key.split("/")


def test_round_trip_records_size_and_sha256(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    data = b"x" * (3 * 1024 * 1024 + 17)  # several chunks
    ref = store.put_stream("a/b/c.bin", io.BytesIO(data))
    assert ref.size == len(data)
    assert store.exists("a/b/c.bin")
    assert store.read_bytes(ref) == data
    target = store.get_file(ref, tmp_path / "out" / "c.bin")
    assert target.read_bytes() == data


def test_corruption_is_detected_on_load(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    ref = store.put_bytes("k", b"hello")
    (tmp_path / "store" / "k").write_bytes(b"hellO")
    with pytest.raises(ArtifactCorrupted, match="'k' is corrupted"):
        store.read_bytes(ref)


def test_missing_artifact_says_which_key(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    ref = store.put_bytes("present", b"1")
    store.delete_prefix("present")
    with pytest.raises(ArtifactNotFound, match="'present' not found"):
        store.read_bytes(ref)


def test_keys_outside_the_root_are_refused(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    with pytest.raises(ArtifactError, match="escapes"):
        store.put_bytes("../outside", b"x")


def test_delete_prefix_removes_a_whole_run(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    for node in ("a", "b"):
        store.put_bytes(f"ns/wf/uid/{node}/-/1/out", b"1")
    store.put_bytes("ns/other/uid/a/-/1/out", b"1")
    assert store.delete_prefix("ns/wf") == 2
    assert not store.exists("ns/wf/uid/a/-/1/out")
    assert store.exists("ns/other/uid/a/-/1/out")
