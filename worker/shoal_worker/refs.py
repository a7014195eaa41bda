"""References to stored bytes: the small values that travel instead of payloads.

Split from ``artifacts`` (the store interface and the local store) so that code which
only reads or builds references, the control plane's planner included, does not load
the store. Standard library only.
"""

from __future__ import annotations

import re

from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["OUTPUT_KEY_PREFIX", "ArtifactRef", "artifact_key"]

OUTPUT_KEY_PREFIX = "output."
"""Offloaded outputs are stored as `output.<key>` (shoal_worker.offload)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ArtifactRef(Record):
    """What travels in outputs and status instead of the payload itself."""

    key: str
    size: int
    sha256: str

    def as_output(self) -> dict[str, object]:
        return {"$artifact": {"key": self.key, "size": self.size, "sha256": self.sha256}}

    @classmethod
    def from_output(cls, value: Any) -> ArtifactRef | None:
        """The reference an output or argument carries (``{"$artifact": {...}}``), else None.

        Extra fields inside ``$artifact`` (a value reference's ``format``, ``count``) are
        allowed; anything not shaped like a reference, including a malformed one, is None.
        """
        if not isinstance(value, dict) or len(value) != 1:
            return None
        body = value.get("$artifact")
        if not isinstance(body, dict):
            return None
        key, size, sha256 = body.get("key"), body.get("size"), body.get("sha256")
        if not isinstance(key, str) or not key:
            return None
        if type(size) is not int or size < 0:
            return None
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            return None
        return cls(key, size, sha256)


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
