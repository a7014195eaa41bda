"""The S3 artifact store against a real MinIO: round trips, integrity, and failures.

No control plane is needed: these tests talk to MinIO only (``minio`` for the shared
server, ``fresh_minio`` for one a test stops or freezes).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from shoal_worker.artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    StoreSettings,
    open_store,
)
from shoal_worker.s3_store import SHA256_METADATA, S3ArtifactStore

pytestmark = pytest.mark.minio

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def settings_for(server: Any, bucket: str, prefix: str = "", **changes: Any) -> StoreSettings:
    url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    values: dict[str, Any] = {
        "url": url,
        "endpoint": server.endpoint,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
        **changes,
    }
    return StoreSettings(**values)


@pytest.fixture
def bucket(minio: Any) -> str:
    name = f"t-{secrets.token_hex(6)}"
    minio.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(minio: Any, bucket: str) -> S3ArtifactStore:
    opened = open_store(settings_for(minio, bucket, "runs"))
    assert isinstance(opened, S3ArtifactStore)
    return opened


def write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(16 * MiB, left))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


# -- round trips --------------------------------------------------------------------------------


def test_bytes_files_and_streams_round_trip_with_sha256_recorded(
    minio: Any, bucket: str, store: S3ArtifactStore, tmp_path: Path
) -> None:
    small = store.put_bytes("a/small.txt", b"hello")
    assert small == ArtifactRef("a/small.txt", 5, hashlib.sha256(b"hello").hexdigest())
    assert store.read_bytes(small) == b"hello"
    data = os.urandom(20 * MiB + 3)  # more than two upload parts
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    from_file = store.put_file("a/file.bin", source)
    streamed = store.put_stream("a/streamed.bin", io.BytesIO(data))
    assert streamed == ArtifactRef("a/streamed.bin", len(data), hashlib.sha256(data).hexdigest())
    assert (from_file.size, from_file.sha256) == (streamed.size, streamed.sha256)
    assert b"".join(store.open(streamed)) == data
    assert store.get_file(from_file, tmp_path / "copy.bin").read_bytes() == data
    small_file = tmp_path / "small.bin"
    small_file.write_bytes(data[: 3 * MiB])
    single_put = store.put_file("a/small.bin", small_file)
    s3 = minio.client()
    for ref in (small, single_put, from_file):
        # Keys are relative to the store's prefix.
        head = s3.head_object(Bucket=bucket, Key=f"runs/{ref.key}")
        assert head["ContentLength"] == ref.size
        if ref.size <= store.part_size:  # a single PUT also records the sha256 as metadata
            assert head["Metadata"][SHA256_METADATA] == ref.sha256
    assert store.exists("a/small.txt")
    assert not store.exists("a/small")
    assert store.describe() == f"s3://{bucket}/runs at {minio.endpoint}"


def test_a_file_that_changes_while_saved_is_refused(store: S3ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "growing.log"
    source.write_bytes(os.urandom(12 * MiB))

    def append(**_: Any) -> None:
        with source.open("ab") as log:
            log.write(b"one more line\n")

    store.client.meta.events.register("before-call.s3.CompleteMultipartUpload", append)
    with pytest.raises(ArtifactError, match=r"growing\.log changed while it was saved"):
        store.put_file("growing.log", source)


class Trickle:
    """A stream that hands out at most 1000 bytes per read, as pipes and sockets may."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.data.read(min(size, 1000) if size >= 0 else 1000)


@pytest.mark.parametrize("size", [0, 1000, 8 * MiB, 8 * MiB + 1, 9 * MiB + 17])
def test_streams_of_any_length_keep_every_byte_and_their_sha256(
    minio: Any, bucket: str, store: S3ArtifactStore, size: int
) -> None:
    data = os.urandom(size)
    ref = store.put_stream("trickle.bin", Trickle(data))  # type: ignore[arg-type]
    assert ref.size == size
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert store.read_bytes(ref) == data
    if size <= store.part_size:  # a single PUT: the sha256 goes in as metadata too
        head = minio.client().head_object(Bucket=bucket, Key="runs/trickle.bin")
        assert head["Metadata"][SHA256_METADATA] == ref.sha256


def test_empty_artifacts_round_trip(store: S3ArtifactStore, tmp_path: Path) -> None:
    ref = store.put_bytes("empty", b"")
    assert store.read_bytes(ref) == b""
    assert store.get_file(ref, tmp_path / "empty").read_bytes() == b""


def test_parallel_ranges_are_reassembled_in_order(
    minio: Any, bucket: str, store: S3ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(10 * MiB + 12345)
    ref = store.put_bytes("ranges.bin", data)
    # 1 MiB ranges, three at a time: eleven ranges finishing in any order.
    small_parts = S3ArtifactStore(settings_for(minio, bucket, "runs"), part_size=MiB, concurrency=3)
    target = small_parts.get_file(ref, tmp_path / "deep" / "ranges.bin")
    assert target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == ["ranges.bin"]


def test_two_prefixes_in_one_bucket_do_not_see_each_other(minio: Any, bucket: str) -> None:
    team_a = open_store(settings_for(minio, bucket, "team-a"))
    team_b = open_store(settings_for(minio, bucket, "team-b"))
    team_a.put_bytes("k", b"a")
    assert team_a.exists("k")
    assert not team_b.exists("k")
    shared = settings_for(minio, bucket)
    overridden = open_store(shared.with_overrides(bucket=None, prefix="team-a"))
    assert overridden.exists("k")


MEMORY_PROBE = """
import hashlib, json, os, sys, threading
from pathlib import Path
from shoal_worker.artifacts import ArtifactRef, StoreSettings, open_store

def field(name):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024

def from_pipe(path):
    read_fd, write_fd = os.pipe()
    def feed():
        with open(path, "rb") as src, os.fdopen(write_fd, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    threading.Thread(target=feed, daemon=True).start()
    return os.fdopen(read_fd, "rb")

def stream_hash(chunks):
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()

operation, source, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ref = ArtifactRef(**json.loads(sys.argv[4]))
store = open_store(StoreSettings.from_env(os.environ))
warm = store.put_bytes("warm-up", b"x" * 4096)  # imports, connections, threads
store.get_file(warm, target)
actions = {
    "put_file": lambda: store.put_file("uploaded", source).sha256,
    "put_stream": lambda: store.put_stream("uploaded", from_pipe(source)).sha256,
    "get_file": lambda: store.get_file(ref, target),
    "open": lambda: stream_hash(store.open(ref)),
}
Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
base = field("VmRSS")
result = actions[operation]()
growth = field("VmHWM") - base
if isinstance(result, Path):
    with result.open("rb") as got:
        result = hashlib.file_digest(got, "sha256").hexdigest()
print(json.dumps({"sha256": result, "growth": growth}))
"""


@pytest.mark.parametrize("operation", ["put_file", "put_stream", "get_file", "open"])
def test_a_200_mb_file_streams_in_bounded_memory(
    minio: Any, bucket: str, tmp_path_factory: pytest.TempPathFactory, operation: str
) -> None:
    """Each transfer in a fresh process, so one's leftover heap cannot hide another's."""
    source = big_file(tmp_path_factory)
    sha256 = hashlib.sha256()  # the file's, computed the slow and obvious way
    with source.open("rb") as stream:
        while block := stream.read(16 * MiB):
            sha256.update(block)
    settings = settings_for(minio, bucket, "memory")
    ref = open_store(settings).put_file("big", source)
    env = {
        **os.environ,
        **settings.to_env(),
        "AWS_ACCESS_KEY_ID": minio.access_key,
        "AWS_SECRET_ACCESS_KEY": minio.secret_key,
    }
    target = tmp_path_factory.mktemp("copy") / "copy.bin"
    argv = [sys.executable, "-c", MEMORY_PROBE, operation, str(source), str(target)]
    done = subprocess.run(
        [*argv, json.dumps({"key": ref.key, "size": ref.size, "sha256": ref.sha256})],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["sha256"] == sha256.hexdigest() == ref.sha256
    print(f"{operation}: peak RSS growth {report['growth'] / MiB:.1f} MiB")
    assert report["growth"] < 100 * MiB, f"{operation} grew RSS by {report['growth'] / MiB} MiB"


_BIG: list[Path] = []


def big_file(factory: pytest.TempPathFactory) -> Path:
    """One random 200 MB file for the memory tests (written once per session)."""
    if not _BIG:
        path = factory.mktemp("big") / "source.bin"
        write_random(path, 200 * MiB)
        _BIG.append(path)
    return _BIG[0]


# -- integrity and missing things ------------------------------------------------------------


def test_a_corrupted_object_is_reported_and_leaves_no_file(
    minio: Any, bucket: str, store: S3ArtifactStore, tmp_path: Path
) -> None:
    ref = store.put_bytes("c/data.bin", b"0123456789" * 1000)
    s3 = minio.client()
    # Same size, one byte different: only the sha256 can tell.
    s3.put_object(Bucket=bucket, Key="runs/c/data.bin", Body=b"0123456789" * 999 + b"012345678X")
    with pytest.raises(ArtifactCorrupted, match=r"'c/data\.bin' is corrupted"):
        store.read_bytes(ref)
    chunks = store.open(ref)
    with pytest.raises(ArtifactCorrupted):
        list(chunks)
    target = tmp_path / "out" / "data.bin"
    with pytest.raises(ArtifactCorrupted):
        store.get_file(ref, target)
    assert list(target.parent.iterdir()) == []
    # A different size is caught before anything is downloaded.
    s3.put_object(Bucket=bucket, Key="runs/c/data.bin", Body=b"short")
    with pytest.raises(ArtifactCorrupted, match="expected 10000 bytes"):
        store.get_file(ref, target)
    assert list(target.parent.iterdir()) == []


def test_an_object_replaced_mid_download_is_not_spliced(
    minio: Any, bucket: str, store: S3ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(4 * MiB)
    ref = store.put_bytes("swap.bin", data)
    one_at_a_time = S3ArtifactStore(
        settings_for(minio, bucket, "runs"), part_size=MiB, concurrency=1
    )
    s3 = minio.client()
    replaced: list[bool] = []

    def replace_after_first_range(**_: Any) -> None:
        if not replaced:
            replaced.append(True)
            s3.put_object(Bucket=bucket, Key="runs/swap.bin", Body=os.urandom(4 * MiB))

    one_at_a_time.client.meta.events.register("after-call.s3.GetObject", replace_after_first_range)
    with pytest.raises(ArtifactCorrupted, match="replaced while being read"):
        one_at_a_time.get_file(ref, tmp_path / "swap.bin")
    assert replaced
    assert not (tmp_path / "swap.bin").exists()


def test_a_missing_key_is_not_found_by_name(store: S3ArtifactStore, tmp_path: Path) -> None:
    ref = ArtifactRef("ns/wf/uid/node/-/1/gone.csv", 3, "0" * 64)
    for read in (store.read_bytes, store.open, lambda r: store.get_file(r, tmp_path / "x")):
        with pytest.raises(ArtifactNotFound, match=r"'ns/wf/uid/node/-/1/gone\.csv' not found"):
            read(ref)
    assert not store.exists(ref.key)


def test_a_missing_bucket_is_named_and_never_created(minio: Any) -> None:
    store = open_store(settings_for(minio, "no-such-bucket"))
    for action in (
        lambda: store.put_bytes("k", b"x"),
        lambda: store.exists("k"),
        lambda: store.read_bytes(ArtifactRef("k", 1, "0" * 64)),
    ):
        with pytest.raises(ArtifactError, match="bucket 'no-such-bucket' does not exist at http"):
            action()
    buckets = [b["Name"] for b in minio.client().list_buckets()["Buckets"]]
    assert "no-such-bucket" not in buckets


def test_delete_prefix_counts_across_pages(minio: Any, bucket: str, store: S3ArtifactStore) -> None:
    keys = [f"ns/wf/uid-1/node/{i}/1/out" for i in range(1203)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.put_bytes(k, b"1"), keys))
    for other in ("ns/wf/uid-2/node/-/1/out", "ns/wf-2/uid/node/-/1/out", "ns/wf/uid-1x/a"):
        store.put_bytes(other, b"1")
    store.put_bytes("ns/wf/uid-1", b"an object named like the prefix")
    assert store.delete_prefix("ns/wf/uid-1") == 1204  # more than one page of 1000
    assert not store.exists(keys[0])
    assert store.exists("ns/wf/uid-2/node/-/1/out")
    assert store.exists("ns/wf/uid-1x/a")
    assert store.delete_prefix("ns/wf/uid-1") == 0
    assert store.delete_prefix("ns/wf/") == 2
    assert store.exists("ns/wf-2/uid/node/-/1/out")
    listed = minio.client().list_objects_v2(Bucket=bucket, Prefix="runs/ns/")
    assert [o["Key"] for o in listed["Contents"]] == ["runs/ns/wf-2/uid/node/-/1/out"]


# -- failures: bounded in time, clear, no secrets ----------------------------------------------


@pytest.mark.parametrize("wrong", ["secret", "access key"])
def test_rejected_credentials_are_named_without_the_secret(
    minio: Any, bucket: str, wrong: str
) -> None:
    bad_secret = "wrong-" + secrets.token_urlsafe(24)
    changes = (
        {"secret_access_key": bad_secret}
        if wrong == "secret"
        else {"access_key_id": "NOSUCHKEY", "secret_access_key": bad_secret}
    )
    store = open_store(settings_for(minio, bucket, **changes))
    started = time.monotonic()
    with pytest.raises(ArtifactError) as caught:
        store.put_bytes("k", b"x")
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "credentials were rejected" in message
    assert f"bucket {bucket!r} at {minio.endpoint}" in message
    assert ("SignatureDoesNotMatch" if wrong == "secret" else "InvalidAccessKeyId") in message
    assert bad_secret not in message
    assert minio.secret_key not in message


@pytest.fixture
def outage_store(fresh_minio: Any) -> tuple[Any, Any, ArtifactRef]:
    fresh_minio.client().create_bucket(Bucket="fault")
    store = open_store(settings_for(fresh_minio, "fault"))
    ref = store.put_bytes("k", b"before the outage")
    return fresh_minio, store, ref


def test_a_stopped_server_fails_fast_and_says_it_cannot_be_reached(
    outage_store: tuple[Any, Any, ArtifactRef], tmp_path: Path
) -> None:
    server, store, ref = outage_store
    server.stop()
    for action in (
        lambda: store.put_bytes("k2", b"x"),
        lambda: store.read_bytes(ref),
        lambda: store.get_file(ref, tmp_path / "k"),
        lambda: store.exists("k"),
        lambda: store.delete_prefix(""),
    ):
        started = time.monotonic()
        with pytest.raises(ArtifactError) as caught:
            action()
        assert time.monotonic() - started < 30
        assert str(caught.value).startswith(
            f"cannot reach S3 endpoint {server.endpoint} for bucket 'fault': "
        )
    assert not (tmp_path / "k").exists()


def test_a_frozen_server_fails_after_the_read_timeout_not_never(
    outage_store: tuple[Any, Any, ArtifactRef],
) -> None:
    server, _, ref = outage_store
    impatient = S3ArtifactStore(settings_for(server, "fault"), read_timeout=2)
    server.pause()  # SIGSTOP: the kernel still accepts connections; nobody answers
    started = time.monotonic()
    with pytest.raises(ArtifactError) as caught:
        impatient.read_bytes(ref)
    assert str(caught.value).startswith(
        f"cannot reach S3 endpoint {server.endpoint} for bucket 'fault': no answer within 2 s, "
        "3 tries"
    )
    # Three attempts of 2 s each plus the retry backoff, well short of forever.
    assert time.monotonic() - started < 30
    server.resume()
    assert impatient.read_bytes(ref) == b"before the outage"
