"""The artifact-store interface, the local-filesystem store, and ``open_store``.

Large payloads travel by reference: a job saves bytes under a key and passes the small
`ArtifactRef` along as an output. The interface lives in the worker package (standard
library only) because both sides use it: jobs save and load, the control plane reads
fan-out lists and collects garbage. `LocalArtifactStore` is the reference behaviour;
the S3 store (``s3_store``, needs boto3) is imported only when settings ask for it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from .refs import ArtifactRef, artifact_key
from .store_settings import StoreSettings, StoreSettingsError

__all__ = [
    "ArtifactCorrupted",
    "ArtifactError",
    "ArtifactNotFound",
    "ArtifactRef",
    "ArtifactStore",
    "LocalArtifactStore",
    "StoreSettings",
    "StoreSettingsError",
    "artifact_key",
    "open_store",
]

CHUNK = 1024 * 1024


class ArtifactError(Exception):
    """A store operation failed; the message says which key and why."""


class ArtifactNotFound(ArtifactError):
    """No artifact under that key."""


class ArtifactCorrupted(ArtifactError):
    """The bytes read back do not match the recorded sha256."""


class ArtifactStore(Protocol):
    """Where artifacts live. Every method streams: memory stays bounded whatever the size.

    Keys are relative to the store's own prefix (the store adds it). Errors are
    `ArtifactError`s: `ArtifactNotFound` for a missing key, `ArtifactCorrupted` when the
    bytes read back do not match the reference's size and sha256.
    """

    def put_stream(self, key: str, stream: BinaryIO) -> ArtifactRef:
        """Store everything ``stream`` yields; the ref records its size and sha256."""
        ...

    def put_bytes(self, key: str, data: bytes) -> ArtifactRef: ...

    def put_file(self, key: str, source: str | os.PathLike[str]) -> ArtifactRef: ...

    def open(self, ref: ArtifactRef) -> Iterator[bytes]:
        """Chunks of the artifact; raises `ArtifactCorrupted` at the end on a mismatch.

        A missing artifact raises `ArtifactNotFound` from this call, not at first read.
        """
        ...

    def read_bytes(self, ref: ArtifactRef) -> bytes: ...

    def get_file(self, ref: ArtifactRef, target: str | os.PathLike[str]) -> Path:
        """Download to ``target``, verified; on a mismatch no (partial) file is left."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every artifact under ``prefix``; returns how many were deleted."""
        ...

    def describe(self) -> str:
        """Where the store is, for messages (``s3://bucket/prefix at URL``); no secrets."""
        ...


def open_store(settings: StoreSettings) -> ArtifactStore:
    """The store ``settings`` describe: local files, or S3 (boto3, imported only now)."""
    if settings.scheme == "file":
        return LocalArtifactStore(settings.prefix)
    try:
        from .s3_store import S3ArtifactStore
    except ImportError as err:
        raise ArtifactError(
            f"the artifact store {settings.url} needs boto3, which is not installed "
            f"({err}); install shoal with the s3 extra: pip install 'shoal[s3]'"
        ) from None
    return S3ArtifactStore(settings)


class Readable(Protocol):
    """Anything with a binary ``read``: a file, a pipe, a socket file, a wrapper."""

    def read(self, size: int = -1, /) -> bytes: ...


class HashingReader:
    """A read-only file object that hashes and counts what passes through it.

    ``read(n)`` returns ``n`` bytes unless the stream ends, whatever the stream underneath
    hands out per call (pipes, sockets, generators): boto3 cuts one upload part per read.
    Not seekable on purpose: consumers (boto3 too) then read it once, front to back.
    """

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            chunk = self.stream.read()
        else:
            chunk = self.stream.read(size)
            if chunk and len(chunk) < size:
                parts = [chunk]
                left = size - len(chunk)
                while left > 0 and (more := self.stream.read(left)):
                    parts.append(more)
                    left -= len(more)
                chunk = b"".join(parts)
        if chunk:
            self.digest.update(chunk)
            self.size += len(chunk)
        return chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk

    def ref(self, key: str) -> ArtifactRef:
        return ArtifactRef(key, self.size, self.digest.hexdigest())


def verified(ref: ArtifactRef, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass chunks through, and fail at the end if size or sha256 differ from `ref`."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        if size > ref.size:
            break  # already wrong: do not read a runaway object to its end
        yield chunk
    check_digest(ref, size, digest.hexdigest())


def check_digest(ref: ArtifactRef, size: int, sha256: str) -> None:
    """Raise `ArtifactCorrupted` unless ``size`` and ``sha256`` are the reference's."""
    if size != ref.size or sha256 != ref.sha256:
        got = f"{size} bytes" if size <= ref.size else f"more than {ref.size} bytes"
        raise ArtifactCorrupted(
            f"artifact {ref.key!r} is corrupted: expected {ref.size} bytes sha256 "
            f"{ref.sha256[:12]}…, read {got} sha256 {sha256[:12]}…"
        )


def write_verified(ref: ArtifactRef, chunks: Iterator[bytes], target: Path) -> Path:
    """Write verified chunks to ``target`` through a temp file: all of it, or nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.part-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in verified(ref, chunks):
                out.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


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
        reader = HashingReader(stream)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in reader.chunks():
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return reader.ref(key)

    def put_bytes(self, key: str, data: bytes) -> ArtifactRef:
        return self.put_stream(key, io.BytesIO(data))

    def put_file(self, key: str, source: str | os.PathLike[str]) -> ArtifactRef:
        with open(source, "rb") as stream:
            return self.put_stream(key, stream)

    def open(self, ref: ArtifactRef) -> Iterator[bytes]:
        return verified(ref, self._chunks(ref))

    def read_bytes(self, ref: ArtifactRef) -> bytes:
        return b"".join(self.open(ref))

    def get_file(self, ref: ArtifactRef, target: str | os.PathLike[str]) -> Path:
        return write_verified(ref, self._chunks(ref), Path(target))

    def _chunks(self, ref: ArtifactRef) -> Iterator[bytes]:
        """The file's chunks; a missing file raises now, not at the first read."""
        path = self._path(ref.key)
        if not path.is_file():
            raise ArtifactNotFound(f"artifact {ref.key!r} not found in {self.describe()}")

        def read() -> Iterator[bytes]:
            with path.open("rb") as stream:
                while chunk := stream.read(CHUNK):
                    yield chunk

        return read()

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

    def describe(self) -> str:
        return f"file://{self.root.resolve()}"
