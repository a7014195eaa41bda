"""Output values too large for the Workflow's status travel through the artifact store.

An output whose JSON encoding is larger than a threshold (4 KiB by default) is written
to the store and replaced by a *value reference*::

    {"$artifact": {"key": "...", "size": 1234, "sha256": "...", "format": "jsonl", "count": 100}}

``format`` is ``json`` (the value as one document) or ``jsonl`` (a list, one item per
line, so a reader can stream it and count it without parsing it whole). The format is
what tells a value reference from a file saved with ``ctx.save_artifact``: value
references are resolved back into values wherever they arrive as arguments, file
references are handed to the job as they are.

Both sides use this module: the worker offloads outputs and resolves arguments, the
control plane stores fan-out aggregates and reads lists to fan out over.
"""

from __future__ import annotations

import io
import json

from .records import Record
from .refs import OUTPUT_KEY_PREFIX, ArtifactRef, artifact_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import Any

    from .artifacts import ArtifactStore

OFFLOAD_BYTES = 4096
"""Default threshold: outputs larger than this (encoded JSON bytes) are offloaded."""
FORMATS = ("json", "jsonl")
_SEPARATORS = (",", ":")


def encode(value: Any) -> str:
    """The compact JSON the size threshold is measured on."""
    return json.dumps(value, separators=_SEPARATORS, ensure_ascii=False)


class ValueRef(Record):
    """A reference to an offloaded output value."""

    ref: ArtifactRef
    format: str
    count: int | None = None
    """Number of items, for a list."""

    def as_output(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "key": self.ref.key,
            "size": self.ref.size,
            "sha256": self.ref.sha256,
            "format": self.format,
        }
        if self.count is not None:
            body["count"] = self.count
        return {"$artifact": body}

    @classmethod
    def parse(cls, value: Any) -> ValueRef | None:
        """The reference in ``value``, or None if it is not a value reference."""
        if not isinstance(value, dict) or len(value) != 1:
            return None
        body = value.get("$artifact")
        if not isinstance(body, dict) or body.get("format") not in FORMATS:
            return None
        try:
            ref = ArtifactRef(str(body["key"]), int(body["size"]), str(body["sha256"]))
            count = body.get("count")
            return cls(ref, str(body["format"]), None if count is None else int(count))
        except (KeyError, TypeError, ValueError):
            return None


def is_reference(value: Any) -> bool:
    """True for any ``{"$artifact": {...}}`` (a value reference or a saved file)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("$artifact"), dict)


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks: streams into ``put_stream``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _batched_lines(items: Iterable[Any], counter: list[int]) -> Iterator[bytes]:
    batch: list[str] = []
    batch_bytes = 0
    for item in items:
        line = encode(item)
        batch.append(line)
        batch_bytes += len(line)
        counter[0] += 1
        if batch_bytes >= 256 * 1024:
            yield ("\n".join(batch) + "\n").encode()
            batch, batch_bytes = [], 0
    if batch:
        yield ("\n".join(batch) + "\n").encode()


def store_list(store: ArtifactStore, key: str, items: Iterable[Any]) -> ValueRef:
    """Write ``items`` as JSON Lines without building the whole document in memory."""
    counter = [0]
    stream = io.BufferedReader(_ChunkReader(_batched_lines(items, counter)), 1024 * 1024)
    ref = store.put_stream(key, stream)
    return ValueRef(ref, "jsonl", counter[0])


def store_value(store: ArtifactStore, key: str, value: Any) -> ValueRef:
    """Write one output value: a list as JSON Lines, anything else as one document."""
    if isinstance(value, list):
        return store_list(store, key, value)
    return ValueRef(store.put_bytes(key, encode(value).encode()), "json")


def iter_items(store: ArtifactStore, ref: ValueRef) -> Iterator[Any]:
    """Stream the items of an offloaded list (its checksum is verified at the end)."""
    if ref.format != "jsonl":
        value = load_value(store, ref)
        if not isinstance(value, list):
            raise ValueError(f"artifact {ref.ref.key!r} holds a {type(value).__name__}, not a list")
        yield from value
        return
    tail = b""
    for chunk in store.open(ref.ref):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line:
                yield json.loads(line)
    if tail.strip():
        yield json.loads(tail)


def load_value(store: ArtifactStore, ref: ValueRef) -> Any:
    """Read an offloaded value back."""
    if ref.format == "jsonl":
        return list(iter_items(store, ref))
    return json.loads(b"".join(store.open(ref.ref)))


def resolve_values(value: Any, store: Callable[[], ArtifactStore]) -> Any:
    """``value`` with every value reference replaced by the value it refers to.

    Walks dicts and lists (an argument can be a list of references: the aggregate of a
    fan-out whose items offloaded their outputs). File references are left as they are.
    ``store`` is only called if there is something to load.
    """
    ref = ValueRef.parse(value)
    if ref is not None:
        return load_value(store(), ref)
    if isinstance(value, list):
        return [resolve_values(v, store) for v in value]
    if isinstance(value, dict) and not is_reference(value):
        return {k: resolve_values(v, store) for k, v in value.items()}
    return value


def output_key(env: Mapping[str, str], name: str) -> str:
    """Where a job's offloaded output ``name`` goes, from the pod's SHOAL_* environment."""
    item = env.get("SHOAL_ITEM_INDEX", "")
    return artifact_key(
        env.get("SHOAL_NAMESPACE") or "local",
        env.get("SHOAL_WORKFLOW") or "local",
        env.get("SHOAL_WORKFLOW_UID") or "local",
        env.get("SHOAL_NODE") or "local",
        int(item) if item.isdigit() else None,
        int(env.get("SHOAL_ATTEMPT") or 1),
        f"{OUTPUT_KEY_PREFIX}{name}",
    )


class Offloader:
    """Decides, per output, whether it stays inline or goes to the store."""

    def __init__(
        self,
        store: Callable[[], ArtifactStore],
        env: Mapping[str, str],
        threshold: int = OFFLOAD_BYTES,
    ) -> None:
        self._store = store
        self._env = env
        self.threshold = threshold

    def __call__(self, name: str, value: Any) -> Any:
        if is_reference(value):
            return value  # already a reference (a saved file, or a resolved-then-passed one)
        if len(encode(value).encode()) <= self.threshold:
            return value
        return store_value(self._store(), output_key(self._env, name), value).as_output()
