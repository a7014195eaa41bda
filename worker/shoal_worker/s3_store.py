"""The artifact store on S3 or anything that speaks its API (MinIO, Ceph, GCS interop).

Needs boto3 (the ``s3`` extra), so only ``open_store`` imports this module, and only
for an ``s3://`` url: a worker without boto3 still imports and runs every other job.

Failure is bounded and explained: explicit connect/read timeouts and a bounded number
of retries (botocore's "standard" mode), so an unreachable endpoint fails in seconds
with "cannot reach S3 endpoint ...", rejected credentials say so without ever showing a
secret, and a missing key or bucket is named.

Memory is bounded whatever the size: files upload in parts read from disk, streams with
at most a few parts in memory, downloads stream in chunks, and ``get_file`` writes
parallel ranges in place while hashing what has landed, in order.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSLError,
)

from .artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    HashingReader,
    check_digest,
    verified,
)
from .store_settings import ENV_VERIFY, StoreSettings, StoreSettingsError

CONNECT_TIMEOUT = 5.0
"""Seconds to open a connection: an unreachable endpoint fails fast."""
READ_TIMEOUT = 20.0
"""Seconds without a byte on an open connection before the request is retried.

S3 answers within a second or two even after a large part; a frozen server therefore
fails a request after ``MAX_ATTEMPTS`` of these (about a minute), not never."""
MAX_ATTEMPTS = 3
"""Tries per request (botocore "standard" retries, with backoff), first one included."""
PART_SIZE = 8 * 1024 * 1024
"""Multipart upload part and ranged download size (boto3's own default)."""
CONCURRENCY = 10
"""Parallel requests per transfer (boto3's own default)."""
STREAM_PARTS_IN_MEMORY = 4
"""put_stream reads a stream front to back: at most this many parts wait in memory."""
READ_CHUNK = 1024 * 1024
SHA256_METADATA = "sha256"
"""Object metadata key (``x-amz-meta-sha256``) that records the content's sha256."""

_REJECTED = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
    "403",
    "Forbidden",
}
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}

T = TypeVar("T")


class S3ArtifactStore:
    """Artifacts as objects under ``s3://bucket/prefix/``; same contract as the local store."""

    def __init__(
        self,
        settings: StoreSettings,
        *,
        part_size: int = PART_SIZE,
        concurrency: int = CONCURRENCY,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        if settings.scheme != "s3":
            raise StoreSettingsError("url", f"{settings.url!r} is not an s3:// url")
        if isinstance(settings.verify, str) and not Path(settings.verify).is_file():
            raise StoreSettingsError(
                f"verify ({ENV_VERIFY})", f"CA bundle {settings.verify!r} is not a file"
            )
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix + "/" if settings.prefix else ""
        self.endpoint = settings.endpoint or "AWS S3"
        self.part_size = part_size
        self.concurrency = concurrency
        self.read_timeout = read_timeout
        # Redacted from every message (botocore's own messages never carry them anyway);
        # very short strings are skipped, or redaction would garble ordinary words.
        self._secrets = [
            s for s in (settings.secret_access_key, settings.session_token) if s and len(s) >= 8
        ]
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            aws_session_token=settings.session_token,
        )
        self.client: Any = session.client(
            "s3",
            endpoint_url=settings.endpoint,
            region_name=settings.region,
            verify=settings.verify,
            config=Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
                s3={"addressing_style": "path" if settings.addressing_path_style else "virtual"},
                max_pool_connections=concurrency + 2,
                user_agent_extra="shoal",
                # sha256 is ours (recorded, verified on every read); the extra CRC headers
                # boto3 adds by default are refused by several S3-compatible stores.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._transfer = TransferConfig(
            multipart_threshold=part_size,
            multipart_chunksize=part_size,
            max_concurrency=concurrency,
        )
        # Parts of a non-seekable stream held in memory at once (an s3transfer option):
        # this many parts bound put_stream's memory (4 x 8 MiB).
        self._transfer.max_in_memory_upload_chunks = STREAM_PARTS_IN_MEMORY

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint}"

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ArtifactError(f"artifact key {key!r} must be relative, without '..'")
        return self.prefix + key

    # -- writing ------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> ArtifactRef:
        """One PUT for up to a part's worth (offloaded outputs are mostly small), else parts."""
        ref = ArtifactRef(key, len(data), hashlib.sha256(data).hexdigest())
        if len(data) > self.part_size:
            self._upload(ref, io.BytesIO(data))
            return ref
        self._call(
            f"upload {key!r}",
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, **_metadata(ref)
            ),
            key,
        )
        return ref

    def put_file(self, key: str, source: str | os.PathLike[str]) -> ArtifactRef:
        """Upload the file in parallel parts while another thread hashes it.

        Up to one part it is a single PUT with the sha256 in the object's metadata. A
        larger file's sha256 is known only after its upload has begun, when S3 no longer
        takes metadata, so it is in the returned reference only: hashing it first instead
        would cost a whole extra pass before the upload (measured: 12% slower). A file
        that changes meanwhile is refused rather than stored under a wrong hash.
        """
        path = Path(source)
        try:
            before = path.stat()
            if before.st_size <= self.part_size:
                ref = self.put_bytes(key, path.read_bytes())
            else:
                ref = self._put_large_file(key, path)
            after = path.stat()
        except OSError as err:
            raise ArtifactError(f"cannot read {path} to save artifact {key!r}: {err}") from err
        unchanged = (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        if not unchanged or ref.size != before.st_size:
            raise ArtifactError(f"{path} changed while it was saved as artifact {key!r}")
        return ref

    def _put_large_file(self, key: str, path: Path) -> ArtifactRef:
        stop = threading.Event()
        with ThreadPoolExecutor(1, thread_name_prefix="shoal-s3-hash") as hasher:
            hashed = hasher.submit(_hash_file, path, stop)
            try:
                self._call(
                    f"upload {key!r}",
                    lambda: self.client.upload_file(
                        str(path), self.bucket, self._key(key), Config=self._transfer
                    ),
                    key,
                )
            except BaseException:
                stop.set()  # a failed upload need not wait for the hash
                raise
            size, sha256 = hashed.result()
        return ArtifactRef(key, size, sha256)

    def put_stream(self, key: str, stream: BinaryIO) -> ArtifactRef:
        """Upload what ``stream`` yields, hashing it on the way (one pass, bounded memory).

        A stream that ends within one part is a single PUT with its sha256 in the object's
        metadata. A longer one goes up in parts and its sha256 is known only at the end,
        when S3 no longer takes metadata (short of copying the whole object, which takes
        minutes for large ones), so there it is in the returned reference only.
        """
        first = _read_up_to(stream, self.part_size + 1)
        if len(first) <= self.part_size:
            return self.put_bytes(key, first)
        reader = HashingReader(_Prepended(first, stream))
        self._call(
            f"upload {key!r}",
            lambda: self.client.upload_fileobj(
                reader, self.bucket, self._key(key), Config=self._transfer
            ),
            key,
        )
        return reader.ref(key)

    def _upload(self, ref: ArtifactRef, stream: BinaryIO) -> None:
        self._call(
            f"upload {ref.key!r}",
            lambda: self.client.upload_fileobj(
                stream,
                self.bucket,
                self._key(ref.key),
                ExtraArgs=_metadata(ref),
                Config=self._transfer,
            ),
            ref.key,
        )

    # -- reading ------------------------------------------------------------------------------

    def open(self, ref: ArtifactRef) -> Iterator[bytes]:
        """One GET, streamed in chunks and verified at the end."""
        response = self._call(
            f"read {ref.key!r}",
            lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(ref.key)),
            ref.key,
        )
        body = response["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from self._guard(f"read {ref.key!r}", body.iter_chunks(READ_CHUNK), ref.key)
            finally:
                body.close()

        return verified(ref, chunks())

    def read_bytes(self, ref: ArtifactRef) -> bytes:
        return b"".join(self.open(ref))

    def get_file(self, ref: ArtifactRef, target: str | os.PathLike[str]) -> Path:
        """Parallel ranged GETs into the file, verified as they land; a mismatch leaves no file.

        Each range streams to its offset in a temp file (memory: a chunk per request).
        Meanwhile this thread reads every finished range back, in order, from the page
        cache (one part-sized buffer) and hashes it, so verifying overlaps the download.
        """
        target_path = Path(target)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        head = self._head(ref.key)
        if head["ContentLength"] != ref.size:
            check_digest(ref, head["ContentLength"], "(not read)")
        fd, tmp = tempfile.mkstemp(dir=target_path.parent, prefix=f".{target_path.name}.part-")
        try:
            try:
                sha256 = self._download(ref.key, ref.size, head["ETag"], fd)
            finally:
                os.close(fd)
            check_digest(ref, ref.size, sha256)
            os.replace(tmp, target_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target_path

    def _head(self, key: str) -> dict[str, Any]:
        """HEAD the object. Its 404 has no body, so a missing bucket is told apart here."""
        try:
            response: dict[str, Any] = self._call(
                f"read {key!r}",
                lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key)),
                key,
            )
        except ArtifactNotFound:
            self._check_bucket(f"read {key!r}")
            raise
        return response

    def _check_bucket(self, what: str) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            if str(err.response.get("Error", {}).get("Code")) in _NOT_FOUND:
                raise self._no_bucket(what) from None
            raise self._explain(what, err, "") from None
        except Exception as err:
            raise self._explain(what, err, "") from None

    def _no_bucket(self, what: str) -> ArtifactError:
        return ArtifactError(
            f"cannot {what}: bucket {self.bucket!r} does not exist at {self.endpoint}"
        )

    def _download(self, key: str, size: int, etag: str, fd: int) -> str:
        """Fetch every range into ``fd`` (``concurrency`` at a time); the file's sha256.

        ``IfMatch`` pins every range to the object seen by HEAD: an overwrite in the
        middle fails the download instead of splicing two objects together.
        """
        ranges = [(a, min(a + self.part_size, size)) for a in range(0, size, self.part_size)]
        digest = hashlib.sha256()
        # One read and one hash call per range: with many download threads holding the
        # GIL in turns, every extra call here costs a wait, and the hash fell behind.
        buffer = memoryview(bytearray(min(self.part_size, size)))
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="shoal-s3-get")
        try:
            futures = [pool.submit(self._get_range, key, a, b, etag, fd) for a, b in ranges]
            for (start, end), future in zip(ranges, futures, strict=True):
                future.result()
                offset = start
                while offset < end:
                    count = os.preadv(fd, [buffer[: end - offset]], offset)
                    if count <= 0:
                        raise ArtifactError(f"artifact {key!r}: the download file came up short")
                    digest.update(buffer[:count])
                    offset += count
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return digest.hexdigest()

    def _get_range(self, key: str, start: int, end: int, etag: str, fd: int) -> None:
        """One range, streamed to its offset in ``fd``."""
        what = f"read {key!r}"
        response = self._call(
            what,
            lambda: self.client.get_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Range=f"bytes={start}-{end - 1}",
                IfMatch=etag,
            ),
            key,
        )
        body = response["Body"]
        offset = start
        try:
            for chunk in body.iter_chunks(READ_CHUNK):
                if offset + len(chunk) > end:
                    break
                view = memoryview(chunk)
                written = 0
                while written < len(chunk):
                    written += os.pwrite(fd, view[written:], offset + written)
                offset += len(chunk)
        except Exception as err:
            raise self._explain(what, err, key) from None
        finally:
            body.close()
        if offset != end:
            raise ArtifactCorrupted(
                f"artifact {key!r} is corrupted: bytes {start}-{end - 1} did not come back whole"
            )

    # -- the rest -----------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ArtifactNotFound:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Delete ``prefix`` itself and everything under ``prefix/`` (a path, as locally).

        ``ns/wf`` does not touch ``ns/wf2/...``; ``""`` empties the store's whole prefix.
        Listed and deleted 1000 keys at a time.
        """
        clean = prefix.strip("/")
        deleted = 0
        if clean and self.exists(clean):
            deleted += self._delete_batch([self._key(clean)], prefix)
        under = self._key(clean) + "/" if clean else self.prefix
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=under
        )
        for page in self._guard(f"list {prefix!r}", iter(pages), prefix):
            keys = [item["Key"] for item in page.get("Contents", [])]
            if keys:
                deleted += self._delete_batch(keys, prefix)
        return deleted

    def _delete_batch(self, keys: list[str], prefix: str) -> int:
        response = self._call(
            f"delete under {prefix!r}",
            lambda: self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            ),
            prefix,
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise ArtifactError(
                f"could not delete {len(errors)} of {len(keys)} artifacts under {prefix!r} "
                f"in {self.describe()}: {first.get('Key')}: {first.get('Code')} "
                f"{first.get('Message', '')}".rstrip()
            )
        return len(keys)

    # -- errors -------------------------------------------------------------------------------

    def _call(self, what: str, action: Callable[[], T], key: str) -> T:
        try:
            return action()
        except ArtifactError:
            raise
        except Exception as err:
            raise self._explain(what, err, key) from None

    def _guard(self, what: str, items: Iterator[T], key: str) -> Iterator[T]:
        """Iterate, translating errors raised along the way (streams, paginators)."""
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except ArtifactError:
                raise
            except Exception as err:
                raise self._explain(what, err, key) from None
            yield item

    def _explain(self, what: str, err: BaseException, key: str) -> ArtifactError:
        """The boto error as a message a user can act on, with every secret removed."""
        client_error = _find(err, ClientError)
        where = f"bucket {self.bucket!r} at {self.endpoint}"
        error: ArtifactError
        if client_error is not None:
            code = str(client_error.response.get("Error", {}).get("Code", ""))
            text = str(client_error.response.get("Error", {}).get("Message", "")) or code
            if code in _NOT_FOUND:
                error = ArtifactNotFound(f"artifact {key!r} not found in {self.describe()}")
            elif code == "NoSuchBucket":
                error = self._no_bucket(what)
            elif code in ("PreconditionFailed", "412"):
                error = ArtifactCorrupted(
                    f"artifact {key!r} is corrupted: it was replaced while being read"
                )
            elif code in _REJECTED:
                error = ArtifactError(
                    f"cannot {what}: the S3 credentials were rejected for {where} "
                    f"({code}: {text}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                    "and the bucket's permissions"
                )
            else:
                error = ArtifactError(f"cannot {what} in {where}: {code}: {text}")
        elif isinstance(err, NoCredentialsError | PartialCredentialsError):
            error = ArtifactError(
                f"cannot {what}: no S3 credentials for {where} ({err}); set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or another boto3 credential source"
            )
        elif isinstance(err, SSLError):
            error = ArtifactError(
                f"cannot {what}: TLS verification failed for {self.endpoint} ({err}); "
                f"set {ENV_VERIFY} to a CA bundle path"
            )
        elif isinstance(err, ReadTimeoutError):
            error = ArtifactError(
                f"cannot reach S3 endpoint {self.endpoint} for bucket {self.bucket!r}: no "
                f"answer within {self.read_timeout:g} s, {MAX_ATTEMPTS} tries ({err})"
            )
        elif isinstance(err, ConnectionError | HTTPClientError):
            error = ArtifactError(
                f"cannot reach S3 endpoint {self.endpoint} for bucket {self.bucket!r}: {err}"
            )
        elif isinstance(err, BotoCoreError):
            error = ArtifactError(f"cannot {what} in {where}: {err}")
        else:
            error = ArtifactError(f"cannot {what} in {where}: {type(err).__name__}: {err}")
        return type(error)(self._redact(str(error)))

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end (``read`` may return short reads)."""
    parts: list[bytes] = []
    left = size
    while left > 0 and (chunk := stream.read(left)):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class _Prepended:
    """``first``, then the rest of ``stream``: put back what was read ahead."""

    def __init__(self, first: bytes, stream: BinaryIO) -> None:
        self._first: memoryview | None = memoryview(first)
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if self._first is None:
            return self._stream.read(size)
        take = len(self._first) if size < 0 else size
        chunk, rest = self._first[:take], self._first[take:]
        self._first = rest if len(rest) else None
        if size < 0:
            return bytes(chunk) + self._stream.read()
        return bytes(chunk)


def _metadata(ref: ArtifactRef) -> dict[str, Any]:
    return {"Metadata": {SHA256_METADATA: ref.sha256}}


def _hash_file(path: Path, stop: threading.Event) -> tuple[int, str]:
    """(size, sha256) of the file, unless ``stop`` is set first."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as stream:
        while not stop.is_set() and (count := stream.readinto(buffer)):
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()


def _find(err: BaseException, kind: type[ClientError]) -> ClientError | None:
    """``err`` or the error it wraps (boto3's transfer errors wrap a ClientError)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
