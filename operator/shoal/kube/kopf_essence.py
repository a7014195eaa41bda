"""kopf's record of a Workflow's last handled state, built without copying its status.

On every event of a Workflow (one per status write: about one per three fan-out items)
kopf builds the object's "essence" to see whether anything but its status changed. Its
stock storage deep-copies the whole body first and only then drops `status` and the
metadata it does not track (`managedFields` among them): a tenth of the operator's CPU
per fan-out item went into copying what it then threw away. This storage hands kopf
the same body minus those parts, so the essence — and the annotation it is stored in —
is the same, and only what is kept is copied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf

__all__ = ["TRACKED_METADATA", "LeanDiffBaseStorage"]

TRACKED_METADATA = ("labels", "annotations", "ownerReferences")
"""What of `metadata` kopf's essence keeps (labels, annotations) or reads to name its
annotation (owner references)."""


class LeanDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """`kopf.AnnotationsDiffBaseStorage`, fed a body without what its essence drops."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        fields = list(extra_fields or ())
        if fields:  # a handler tracks more than the spec (none of Shoal's): kopf's way
            return super().build(body=body, extra_fields=fields)
        meta = body.get("metadata") or {}
        lean: dict[str, Any] = {key: value for key, value in body.items() if key != "status"}
        lean["metadata"] = {key: meta[key] for key in TRACKED_METADATA if key in meta}
        return super().build(body=kopf.Body(cast(kopf.RawBody, lean)), extra_fields=None)
