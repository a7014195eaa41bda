"""A validated workflow, ready for the planner: defaults merged, expressions compiled, DAG sorted.

Building it (`shoal.core.validation.compile_workflow`) is the only place a spec is checked;
the planner trusts it and so never meets a cycle, an unknown node or a broken expression.
"""

from __future__ import annotations

from shoal_worker.records import Record, field

TYPE_CHECKING = False  # `typing` (and `dataclasses`) would cost `shoal validate`
if TYPE_CHECKING:  # types only: `shoal validate`'s fast check loads no pydantic model
    from typing import Any

    from shoal.api.common import EnvVar
    from shoal.api.enums import RunPolicy
    from shoal.api.workflow import Node, RetryPolicy, Workflow, WorkflowSpec
    from shoal.core.defaults import ResolvedPod
    from shoal.core.expressions import Compiled, Expression


__all__ = ["CompiledNode", "CompiledWorkflow", "WorkflowMeta", "meta_of"]


class CompiledNode(Record):
    """One node with its defaults applied and its templates compiled.

    `pod` holds every pod setting resolved against `spec.defaults`; executors read it
    (never `spec.defaults`, nor the pod settings of `spec`).

    - `for_each`: a literal list, or an Expression yielding one; None for a plain node.
    - `env_values`: literal env values (templates compiled); `valueFrom` entries are in
      `env_refs`.
    - `retry_when`: `retries.expression` compiled: it reads `lastRetry` only.
    - `sequence`: `withSequence` whose bounds are templates: its `count`/`start`/`end`/
      `format` compiled, turned into items by the planner (a constant one is in `for_each`).
    - `memo_key`: `memoize.key` compiled (a template yielding text).
    """

    name: str
    spec: Node
    deps: tuple[str, ...]
    ancestors: frozenset[str]
    run_policy: RunPolicy
    when: Expression | None
    for_each: Compiled | None
    args: Compiled
    command: Compiled | None
    env_values: dict[str, Compiled]
    env_refs: tuple[EnvVar, ...]
    pod: ResolvedPod
    parallelism: int | None
    fail_fast: bool
    item_arg: str | None
    retry_when: Expression | None = None
    sequence: Compiled | None = None
    memo_key: Compiled | None = None

    @property
    def fan_out(self) -> bool:
        return self.for_each is not None or self.sequence is not None

    @property
    def image(self) -> str | None:
        return self.pod.image

    @property
    def retries(self) -> RetryPolicy:
        return self.pod.retries

    @property
    def timeout_seconds(self) -> float | None:
        return self.pod.timeout_seconds


class WorkflowMeta(Record):
    """Identity of the run, visible to expressions as `workflow`."""

    name: str
    namespace: str = "default"
    uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def as_context(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "uid": self.uid}


class CompiledWorkflow(Record):
    """Everything the planner needs, in topological order.

    - `offload_bytes`: aggregated fan-out outputs larger than this go to the artifact
      store; None when the executor has no store (they then stay inline).
    - `on_exit`: the exit handler's node name (`spec.onExit`): it runs after every other
      node.
    """

    meta: WorkflowMeta
    spec: WorkflowSpec
    params: dict[str, Any]
    nodes: dict[str, CompiledNode]
    order: tuple[str, ...]
    parallelism: int | None
    active_deadline_seconds: float | None
    offload_bytes: int | None = None
    on_exit: str | None = None


def meta_of(workflow: Workflow, default_name: str = "workflow") -> WorkflowMeta:
    """The run identity expressions see, from the manifest's metadata (a Workflow model,
    or the fast check's view of one)."""
    md = workflow.metadata
    name = md.name or (md.generate_name or f"{default_name}-").rstrip("-")
    return WorkflowMeta(name=name, namespace=md.namespace or "default", uid=md.uid or "")
