"""The one place a node's pod settings are resolved against `spec.defaults`.

Everything a pod needs (image, env, timeout, retries, resources, scheduling, service
account) is decided here once, when the workflow is compiled; the planner, the Job builder
and the local executor read the result from the compiled node and never consult
`spec.defaults` themselves, so the precedence cannot differ between them.

Precedence, kept exactly as the API documents it:
- image, timeout, retries, resources, automount: the node's value unless it is unset;
  the image then falls back to the workflow's `image`, retries to no retry.
- env: the defaults' list merged with the node's, the node's entry winning by name.
- nodeSelector, tolerations, serviceAccountName: the node's value unless it is unset or
  empty (`{}`, `[]`), so an empty node value never clears the defaults'.
"""

from __future__ import annotations

from shoal_worker.records import Record

TYPE_CHECKING = False  # `typing` (and `dataclasses`) would cost `shoal validate`
if TYPE_CHECKING:  # types only: `shoal validate`'s fast check passes views of the models
    from typing import TypeVar

    from shoal.api.common import EnvVar, ResourceRequirements, Toleration
    from shoal.api.workflow import Node, PodSettings, RetryPolicy, WorkflowSpec

    _T = TypeVar("_T")

__all__ = ["ResolvedPod", "merge_env", "resolve_pod"]


class ResolvedPod(Record):
    """A node's pod settings after `spec.defaults` and the workflow's image applied.

    - `image`: None when neither the node, the defaults nor the workflow name one: the
      executor's own image applies (the operator's configured worker image).
    - `env`: literal values still hold their `${{ }}` templates; the compiler compiles them.
    - `automount_service_account_token`: False unless asked for: the worker talks to S3,
      never to the Kubernetes API.
    """

    image: str | None
    env: tuple[EnvVar, ...]
    timeout_seconds: float | None
    retries: RetryPolicy
    resources: ResourceRequirements | None
    node_selector: dict[str, str] | None
    tolerations: tuple[Toleration, ...]
    service_account_name: str | None
    automount_service_account_token: bool


def merge_env(defaults: list[EnvVar] | None, own: list[EnvVar] | None) -> list[EnvVar]:
    """The defaults' variables overlaid by the node's, in first-declared order."""
    merged = {e.name: e for e in defaults or []}
    merged.update({e.name: e for e in own or []})
    return list(merged.values())


def _unless_unset(own: _T | None, default: _T | None) -> _T | None:
    return own if own is not None else default


def _unless_empty(own: _T | None, default: _T | None) -> _T | None:
    return own or default


def resolve_pod(node: Node, spec: WorkflowSpec) -> ResolvedPod:
    """`node`'s pod settings with `spec.defaults` (and `spec.image`) filled in."""
    defaults: PodSettings = spec.defaults
    automount = _unless_unset(
        node.automount_service_account_token, defaults.automount_service_account_token
    )
    return ResolvedPod(
        image=_unless_unset(node.image, defaults.image) or spec.image,
        env=tuple(merge_env(defaults.env, node.env)),
        timeout_seconds=_unless_unset(node.timeout_seconds, defaults.timeout_seconds),
        retries=_unless_unset(node.retries, defaults.retries) or _no_retry(spec),
        resources=_unless_unset(node.resources, defaults.resources),
        node_selector=_unless_empty(node.node_selector, defaults.node_selector) or None,
        tolerations=tuple(_unless_empty(node.tolerations, defaults.tolerations) or ()),
        service_account_name=_unless_empty(node.service_account_name, defaults.service_account_name)
        or None,
        automount_service_account_token=bool(automount),
    )


def _no_retry(spec: WorkflowSpec) -> RetryPolicy:
    """The default policy (no retry), of the same family as `spec`: a view of the document
    (`shoal.api.model_view`, which offers `no_retry`) keeps the fast check free of pydantic."""
    make = getattr(spec, "no_retry", None)
    if make is not None:
        policy: RetryPolicy = make()
        return policy
    from shoal.api.workflow import RetryPolicy

    return RetryPolicy()
