"""The artifact-store interface, and the local-filesystem store that `shoal run` uses.

Large payloads travel by reference: a job saves bytes under a key and passes the small
`ArtifactRef` along as an output. The interface lives in the worker package (standard
library only) because both sides use it: jobs save and load, the control plane reads
fan-out lists and collects garbage. An S3 implementation with the same interface comes
with the artifacts feature; `LocalArtifactStore` is the reference behaviour.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")


class ArtifactError(Exception):
    """A store operation failed; the message says which key and why."""


class ArtifactNotFound(ArtifactError):
    """No artifact under that key."""


class ArtifactCorrupted(ArtifactError):
    """The bytes read back do not match the recorded sha256."""


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """What travels in outputs and status instead of the payload itself."""

    key: str
    size: int
    sha256: str

    def as_output(self) -> dict[str, object]:
        return {"$artifact": {"key": self.key, "size": self.size, "sha256": self.sha256}}


def artifact_key(
    namespace: str,
    workflow: str,
    uid: str,
    node: str,
    item: int | None,
    attempt: int,
    name: str,
) -> str:
    """A collision-free, readable key: namespace/workflow/uid/node/item/attempt/name.

    The uid separates two runs that reuse a workflow name; item and attempt separate the
    pods of one node. Each segment is made path-safe without losing readability.
    """
    item_part = "-" if item is None else str(item)
    parts = [namespace, workflow, uid or "local", node, item_part, str(attempt), name]
    return "/".join(_UNSAFE.sub("_", p) or "_" for p in parts)


class ArtifactStore(Protocol):
    """Where artifacts live. Every implementation streams: memory stays bounded."""

    def put_stream(self, key: str, stream: BinaryIO) -> ArtifactRef: ...
    def open(self, ref: ArtifactRef) -> Iterator[bytes]: ...
    def exists(self, key: str) -> bool: ...
    def delete_prefix(self, prefix: str) -> int: ...


class _HashingReader:
    """Reads a stream in chunks while hashing and counting it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.stream.read(CHUNK):
            self.digest.update(chunk)
            self.size += len(chunk)
            yield chunk


def verified(ref: ArtifactRef, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass chunks through, and fail at the end if size or sha256 differ from `ref`."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    if size != ref.size or digest.hexdigest() != ref.sha256:
        raise ArtifactCorrupted(
            f"artifact {ref.key!r} is corrupted: expected {ref.size} bytes sha256 "
            f"{ref.sha256[:12]}…, read {size} bytes sha256 {digest.hexdigest()[:12]}…"
        )


class LocalArtifactStore:
    """Artifacts as files under a root folder; writes are atomic (temp file, then rename)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ArtifactError(f"artifact key {key!r} escapes the store")
        return path

    def put_stream(self, key: str, stream: BinaryIO) -> ArtifactRef:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        reader = _HashingReader(stream)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in reader.chunks():
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return ArtifactRef(key, reader.size, reader.digest.hexdigest())

    def put_bytes(self, key: str, data: bytes) -> ArtifactRef:
        return self.put_stream(key, io.BytesIO(data))

    def put_file(self, key: str, source: str | os.PathLike[str]) -> ArtifactRef:
        with open(source, "rb") as stream:
            return self.put_stream(key, stream)

    def open(self, ref: ArtifactRef) -> Iterator[bytes]:
        path = self._path(ref.key)
        if not path.is_file():
            raise ArtifactNotFound(f"artifact {ref.key!r} not found in {self.root}")

        def read() -> Iterator[bytes]:
            with path.open("rb") as stream:
                while chunk := stream.read(CHUNK):
                    yield chunk

        return verified(ref, read())

    def read_bytes(self, ref: ArtifactRef) -> bytes:
        return b"".join(self.open(ref))

    def get_file(self, ref: ArtifactRef, target: str | os.PathLike[str]) -> Path:
        target_path = Path(target)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        with target_path.open("wb") as out:
            for chunk in self.open(ref):
                out.write(chunk)
        return target_path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix) if prefix else self.root.resolve()
        if base.is_file():
            base.unlink()
            return 1
        if not base.exists():
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base)
        return count
