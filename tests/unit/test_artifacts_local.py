"""The local artifact store: what `shoal run` uses, and the reference for the S3 store."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from shoal_worker.artifacts import (
    CHUNK,
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    HashingReader,
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


def test_delete_prefix_is_a_path_not_a_string_prefix(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    store.put_bytes("ns/wf/uid/a/-/1/out", b"1")
    store.put_bytes("ns/wf2/uid/a/-/1/out", b"1")
    assert store.delete_prefix("ns/wf") == 1
    assert store.exists("ns/wf2/uid/a/-/1/out")


def test_a_corrupted_download_leaves_no_file(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    ref = store.put_bytes("k", b"hello world")
    (tmp_path / "store" / "k").write_bytes(b"hello world, and more")
    target = tmp_path / "out" / "k.txt"
    with pytest.raises(ArtifactCorrupted, match="expected 11 bytes"):
        store.get_file(ref, target)
    assert list(target.parent.iterdir()) == []


def test_put_file_and_put_stream_from_a_pipe(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    source = tmp_path / "source.bin"
    source.write_bytes(b"abc" * 1000)
    from_file = store.put_file("f", source)
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as writer:
        writer.write(b"abc" * 1000)
    with os.fdopen(read_fd, "rb") as reader:
        from_pipe = store.put_stream("p", reader)
    assert (from_file.size, from_file.sha256) == (from_pipe.size, from_pipe.sha256)
    assert from_file.sha256 == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_open_streams_in_chunks_and_checks_at_the_end(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    data = os.urandom(CHUNK * 2 + 5)
    ref = store.put_bytes("k", data)
    chunks = list(store.open(ref))
    assert [len(c) for c in chunks] == [CHUNK, CHUNK, 5]
    truncated = ArtifactRef("k", ref.size + 1, ref.sha256)
    stream = store.open(truncated)
    with pytest.raises(ArtifactCorrupted):
        list(stream)


def test_a_missing_artifact_raises_when_opened_not_when_read(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(ArtifactNotFound, match=f"'nope' not found in file://{tmp_path}"):
        store.open(ArtifactRef("nope", 1, "0" * 64))


SHA = hashlib.sha256(b"x").hexdigest()


def test_a_reference_survives_the_trip_through_outputs() -> None:
    ref = ArtifactRef("ns/wf/u/n/-/1/report.csv", 1, SHA)
    assert ArtifactRef.from_output(json.loads(json.dumps(ref.as_output()))) == ref


def test_value_references_with_extra_fields_are_references() -> None:
    value = {"$artifact": {"key": "k", "size": 10, "sha256": SHA, "format": "jsonl", "count": 3}}
    assert ArtifactRef.from_output(value) == ArtifactRef("k", 10, SHA)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "k",
        42,
        [{"$artifact": {"key": "k", "size": 1, "sha256": SHA}}],
        {"key": "k", "size": 1, "sha256": SHA},
        {"$artifact": {"key": "k", "size": 1, "sha256": SHA}, "other": 1},
        {"$artifact": "k"},
        {"$artifact": {"size": 1, "sha256": SHA}},
        {"$artifact": {"key": "", "size": 1, "sha256": SHA}},
        {"$artifact": {"key": "k", "size": -1, "sha256": SHA}},
        {"$artifact": {"key": "k", "size": True, "sha256": SHA}},
        {"$artifact": {"key": "k", "size": "1", "sha256": SHA}},
        {"$artifact": {"key": "k", "size": 1, "sha256": "abc"}},
        {"$artifact": {"key": "k", "size": 1, "sha256": SHA.upper()}},
    ],
)
def test_anything_else_is_not_a_reference(value: object) -> None:
    assert ArtifactRef.from_output(value) is None


class Trickle:
    """Hands out at most 7 bytes per read, as a raw pipe or a generator wrapper may."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.data.read(7 if size < 0 else min(size, 7))


def test_a_hashing_reader_fills_every_read_until_the_end() -> None:
    # boto3 turns each read into an upload part: short reads would make tiny parts.
    reader = HashingReader(Trickle(b"x" * 100))
    assert [len(reader.read(30)) for _ in range(5)] == [30, 30, 30, 10, 0]
    assert reader.ref("k") == ArtifactRef("k", 100, hashlib.sha256(b"x" * 100).hexdigest())
