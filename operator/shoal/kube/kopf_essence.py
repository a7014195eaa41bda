"""kopf's record of a Workflow's last handled state, built without deep copies.

On every event of a Workflow (one per status write: about one per three fan-out items)
kopf builds the object's "essence" (its spec, labels and annotations) to see whether
anything but its status changed. Its stock storages deep-copy the whole body, status
and `managedFields` included, only to drop them, then deep-copy the essence once more
to drop its own annotations: the spec of a fan-out over a 500-item list was copied
twice per event, a tenth of the operator's CPU per item. These storages produce the
same essence (and so the same stored annotation and the same diffs) but copy only the
small parts they change; the spec is shared with the event's body, which nothing
writes to (kopf compares essences and serialises them into its annotation).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf

__all__ = ["DROPPED", "LeanDiffBaseStorage", "LeanProgressStorage"]

DROPPED = ("apiVersion", "kind", "metadata", "status")
"""Top-level fields kopf's essence leaves out (it keeps labels and annotations)."""


class LeanDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """`kopf.AnnotationsDiffBaseStorage` that copies only the metadata it keeps."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        fields = list(extra_fields or ())
        if fields:  # a handler tracks more than the spec (none of Shoal's): kopf's way
            return super().build(body=body, extra_fields=fields)
        # kopf's own build over the metadata alone (labels, annotations, its key names),
        # then the rest of the body by reference.
        only_meta = {key: body[key] for key in ("apiVersion", "kind", "metadata") if key in body}
        essence = super().build(body=kopf.Body(cast(kopf.RawBody, only_meta)))
        for key, value in body.items():
            if key not in DROPPED:
                essence[key] = value  # type: ignore[literal-required]
        return essence


class LeanProgressStorage(kopf.AnnotationsProgressStorage):
    """`kopf.AnnotationsProgressStorage` whose `clear` copies the essence's top level
    and metadata only (the parts it edits), not the spec."""

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        out: dict[str, Any] = dict(essence)
        meta = out.get("metadata")
        if isinstance(meta, dict):
            out["metadata"] = meta = dict(meta)
            annotations = meta.get("annotations")
            if isinstance(annotations, dict):
                meta["annotations"] = dict(annotations)
        lean = cast(kopf.BodyEssence, out)
        annotations = (out.get("metadata") or {}).get("annotations") or {}
        keys = {key for key in annotations if self.prefix and key.startswith(f"{self.prefix}/")}
        self.remove_annotations(lean, keys)
        self.remove_empty_stanzas(lean)
        return lean
