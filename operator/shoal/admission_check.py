"""What the admission webhook decides about one object: the compile `shoal validate` runs.

Kept apart from the HTTP serving (`shoal.kube.admission`) so the decision is pure: the
same `parse_document` + `compile_manifest` as `shoal validate`, hence the same messages,
minus the `file:line:column: ` prefix (the API server sends JSON, not the user's file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.core import jsonbounds
from shoal.core.templates import TemplatesNeeded
from shoal.core.validation import InvalidWorkflow
from shoal.job_check import check_manifest
from shoal.manifests import Manifest, Templates, compile_manifest, parse_document

__all__ = ["Decision", "MalformedReview", "Review", "parse_review", "review"]

REVIEW_VERSION = "admission.k8s.io/v1"
MAX_PROBLEMS = 20
"""Problems listed in one refusal; the rest are counted (kubectl prints the message whole)."""

SOURCE = "admission"
"""The source name compile errors would carry; never shown (problems are described
without it)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Admit, or refuse with one line per problem."""

    problems: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.problems


def problems_of(raw: Any, templates: Templates | None = None) -> tuple[str, ...]:
    """Every problem `shoal validate` reports for this object, each without a source;
    `templates` are those its references name, as the webhook fetched them."""
    try:
        manifest = Manifest(parse_document(raw, SOURCE), SOURCE)
        compiled = compile_manifest(manifest, None, templates)
        check_manifest(manifest, compiled, ())  # forEach over params
    except TemplatesNeeded:
        return ()  # a cluster-wide template's namespaced references: the run checks them
    except InvalidWorkflow as err:
        return tuple(p.describe(None) for p in err.problems)
    return ()


def review(
    operation: str, obj: Any, old: Any = None, templates: Templates | None = None
) -> Decision:
    """The decision for a CREATE or UPDATE of a Workflow or CronWorkflow.

    An UPDATE is judged only when it changes the spec, and only if the spec before it
    compiled: the operator's own metadata writes (finalizers, kopf's annotations), a
    deletion, or `spec.stop` on a workflow that was already invalid (created before the
    webhook existed) must never be refused, or such objects could not be stopped or deleted.
    """
    if operation not in ("CREATE", "UPDATE") or not isinstance(obj, dict):
        return Decision()
    if operation == "UPDATE":
        if not isinstance(old, dict) or old.get("spec") == obj.get("spec"):
            return Decision()
        metadata = obj.get("metadata")
        if isinstance(metadata, dict) and metadata.get("deletionTimestamp"):
            return Decision()
        if problems_of(old, templates):
            return Decision()
    return Decision(problems_of(obj, templates))


class MalformedReview(ValueError):
    """The request body is not an AdmissionReview this webhook can answer."""


@dataclass(frozen=True, slots=True)
class Review:
    """The parts of an AdmissionReview request the decision needs."""

    uid: str
    operation: str
    kind: str
    namespace: str
    name: str
    obj: Any
    old: Any

    def decide(self, templates: Templates | None = None) -> Decision:
        return review(self.operation, self.obj, self.old, templates)

    def response(self, decision: Decision) -> dict[str, Any]:
        """The AdmissionReview answer; a refusal carries every problem, one per line."""
        answer: dict[str, Any] = {"uid": self.uid, "allowed": decision.allowed}
        if not decision.allowed:
            lines = list(decision.problems[:MAX_PROBLEMS])
            if len(decision.problems) > MAX_PROBLEMS:
                lines.append(f"... and {len(decision.problems) - MAX_PROBLEMS} more problems")
            answer["status"] = {"code": 422, "reason": "Invalid", "message": "\n".join(lines)}
        return {"apiVersion": REVIEW_VERSION, "kind": "AdmissionReview", "response": answer}


def parse_review(body: bytes) -> Review:
    """Decode an AdmissionReview request, with nesting cut as for watch events."""
    try:
        doc = jsonbounds.loads(body)
    except ValueError as err:
        raise MalformedReview(f"not JSON: {err}") from None
    request = doc.get("request") if isinstance(doc, dict) else None
    if not isinstance(request, dict) or doc.get("apiVersion") != REVIEW_VERSION:
        raise MalformedReview(f"not an {REVIEW_VERSION} AdmissionReview request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("the request has no uid")
    kind = request.get("kind")
    return Review(
        uid=uid,
        operation=str(request.get("operation", "")),
        kind=str(kind.get("kind", "")) if isinstance(kind, dict) else "",
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or ""),
        obj=request.get("object"),
        old=request.get("oldObject"),
    )
