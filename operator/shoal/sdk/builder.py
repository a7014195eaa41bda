"""`Workflow` in code: a builder whose `build()` is the API model `shoal validate` reads.

Nodes are added with `wf.job(name, func, **args)` and `wf.command(name, argv)`; each
returns a `Step` whose `outputs` and `phase` are references other nodes take as
arguments. A node depends on every node its arguments, condition, fan-out list, env or
command read, plus any named with `.after()`; `dependsOn` lists them in the order the
nodes were added, so the manifest is the same however the references were written.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from shoal.api.common import ObjectMeta
from shoal.api.cron import AFTER_PARAMETERS, POLL_PARAMETERS
from shoal.api.workflow import Node, WorkflowSpec
from shoal.api.workflow import Workflow as WorkflowModel
from shoal.core.expressions import (
    ExpressionError,
    compile_expression,
    compile_value,
    expressions_in,
)
from shoal.sdk.jobs import JobTarget, check_arguments, declared_outputs, target_of
from shoal.sdk.refs import FanOut, Ref, SdkError, member, templated
from shoal.sdk.resource import Resource

__all__ = ["Params", "Step", "TemplateStep", "Workflow", "model_errors"]

MANAGED = frozenset({"name", "job", "command", "args", "depends_on"})
"""Node fields the builder sets itself (from `job()`/`command()` and the references)."""
TRIGGER_PARAMETERS = frozenset({"scheduledTime", *POLL_PARAMETERS, *AFTER_PARAMETERS})
"""Parameters a CronWorkflow's trigger adds to every run."""


def model_errors(err: ValidationError) -> str:
    """Pydantic's errors as `field.path: message`, joined."""
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    return "; ".join(parts)


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Params:
    """`wf.params["region"]`: a reference to a declared parameter."""

    def __init__(self, declared: Mapping[str, Any]) -> None:
        self._declared = declared

    def __getitem__(self, name: str) -> Ref:
        if name not in self._declared and name not in TRIGGER_PARAMETERS:
            raise SdkError(
                f"parameter {name!r} is not declared{_suggest(name, self._declared)}; "
                "add it to the Workflow's parameters"
            )
        return Ref(member("params", name))


class Step:
    """One node being built; `outputs`, `phase` and `output()` refer to what it produces."""

    def __init__(
        self,
        name: str,
        *,
        target: JobTarget | None = None,
        command: list[Any] | None = None,
        args: Any = None,
        gate: dict[str, Any] | None = None,
        child: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self._gate = gate
        self._child = child
        self._target = target
        self._command = command
        self._args = args
        self._fields: dict[str, Any] = {}
        self._after: list[str] = []

    @property
    def _base(self) -> str:
        return member("nodes", self.name)

    @property
    def outputs(self) -> Ref:
        """This node's outputs; `step.outputs["ids"]`, `.item` to fan out over a list."""
        func = self._target.func if self._target is not None else None
        outputs = declared_outputs(func)
        return Ref(f"{self._base}.outputs", self.name, dict, outputs)

    def output(self, key: str) -> Ref:
        """One output by name (the same as `outputs[key]`)."""
        return self.outputs[key]

    @property
    def phase(self) -> Ref:
        """This node's phase (`Succeeded`, `Skipped`...), for a later node's condition."""
        return Ref(f"{self._base}.phase", self.name, str)

    def after(self, *steps: Step | str) -> Step:
        """Depend on these nodes even though nothing of theirs is read."""
        self._after += [s.name if isinstance(s, Step) else s for s in steps]
        return self

    def set(self, **fields: Any) -> Step:
        """Any other node field by its Python name (`retries=`, `when=`, `run_policy=`...).

        `when` takes a string or a Ref; `env` also takes a mapping of name to value.
        """
        for key in fields:
            if key in MANAGED or key not in Node.model_fields:
                allowed = sorted(set(Node.model_fields) - MANAGED)
                raise SdkError(
                    f"node {self.name!r}: {key!r} is not a node setting"
                    f"{_suggest(key, allowed)}; settings: {', '.join(allowed)}"
                )
        self._fields.update(fields)
        return self

    def _settings(self) -> dict[str, Any]:
        fields = dict(self._fields)
        when = fields.get("when")
        if isinstance(when, Ref):
            fields["when"] = when.expr
        env = fields.get("env")
        if isinstance(env, Mapping):
            fields["env"] = [{"name": k, "value": v} for k, v in env.items()]
        return {k: v if k == "when" else templated(v) for k, v in fields.items()}

    def _job_fields(self) -> dict[str, Any]:
        assert self._target is not None
        args: dict[str, Any] = dict(self._args or {})
        check_arguments(self.name, self._target, args)
        fields: dict[str, Any] = {"job": self._target.name}
        fanned = [k for k, v in args.items() if isinstance(v, FanOut)]
        if len(fanned) > 1:
            raise SdkError(f"node {self.name!r}: fans out over {fanned}; a node fans out once")
        if fanned:
            if "for_each" in self._fields:
                raise SdkError(
                    f"node {self.name!r}: both .item/each()/sequence() and for_each are set"
                )
            fan: FanOut = args.pop(fanned[0])
            if fan.sequence is not None:
                fields["with_sequence"] = fan.sequence
            else:
                fields["for_each"] = templated(fan.values)
            fields["item_arg"] = fanned[0]
        if args:
            fields["args"] = templated(args)
        return fields

    def build(self, known: list[str]) -> Node:
        """The API model of this node; `known` are the workflow's node names, in order."""
        if self._target is not None:
            fields = self._job_fields()
        elif self._gate is not None:
            fields = {"suspend": self._gate}
        elif self._child is not None:
            fields = {"workflow": templated(self._child)}
        else:
            fields = {"command": templated(self._command)}
            if self._args is not None:
                fields["args"] = templated(self._args)
        fields |= self._settings()
        wanted = set(self._after) | _references(fields)
        unknown = [n for n in self._after if n not in known]
        if unknown:
            raise SdkError(f"node {self.name!r}: .after() names unknown node(s) {unknown}")
        depends = [n for n in known if n in wanted and n != self.name]
        try:
            return Node.model_validate({"name": self.name, **fields, "depends_on": depends})
        except ValidationError as err:
            raise SdkError(f"node {self.name!r}: {model_errors(err)}") from None


def _references(fields: dict[str, Any]) -> set[str]:
    """Nodes read by the templates and the condition; bad expressions are left to validate."""
    found: set[str] = set()
    for key, raw in fields.items():
        # A settings model (`memoize=Memoize(key=...)`) is read as the manifest holds it.
        value = raw.model_dump(by_alias=True) if isinstance(raw, BaseModel) else raw
        try:
            if key == "when" and isinstance(value, str):
                found |= compile_expression(value).node_refs
            elif key != "when":
                found.update(n for e in expressions_in(compile_value(value)) for n in e.node_refs)
        except ExpressionError:
            continue
    return found


class TemplateStep(Step):
    """A node that reuses one node, or the whole DAG, of a template (`wf.template()`)."""

    def __init__(
        self,
        name: str,
        template: Any,
        *,
        node: str | None = None,
        cluster_scope: bool | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name)
        if isinstance(template, str):
            scope, template_name = bool(cluster_scope), template
        else:  # a WorkflowTemplate builder (sdk/templates.py)
            found = getattr(template, "cluster_scope", False)
            scope = found if cluster_scope is None else cluster_scope
            template_name = template.metadata.name or ""
        self._ref = {"name": template_name, "node": node, "cluster_scope": scope}
        self._parameters = dict(parameters or {})

    def build(self, known: list[str]) -> Node:
        fields: dict[str, Any] = {"template_ref": self._ref}
        if self._parameters:
            fields["parameters"] = templated(self._parameters)
        fields |= self._settings()
        wanted = set(self._after) | _references(fields)
        depends = [n for n in known if n in wanted and n != self.name]
        try:
            return Node.model_validate({"name": self.name, **fields, "depends_on": depends})
        except ValidationError as err:
            raise SdkError(f"node {self.name!r}: {model_errors(err)}") from None


class Workflow(Resource):
    """A Workflow built in code; `build()` gives the same model a YAML manifest parses to."""

    def __init__(
        self,
        name: str | None = None,
        /,
        *,
        generate_name: str | None = None,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
        **spec: Any,
    ) -> None:
        """`spec` takes the other WorkflowSpec fields by Python name (`image=`, `parallelism=`,
        `defaults=`, `active_deadline_seconds=`...)."""
        for key in spec:
            if key in ("nodes", "parameters") or key not in WorkflowSpec.model_fields:
                allowed = sorted(set(WorkflowSpec.model_fields) - {"nodes", "parameters"})
                raise SdkError(f"{key!r} is not a Workflow setting{_suggest(key, allowed)}")
        try:
            self.metadata = ObjectMeta(
                name=name,
                generate_name=generate_name,
                namespace=namespace,
                labels=labels or {},
                annotations=annotations or {},
            )
        except ValidationError as err:
            raise SdkError(f"workflow {name!r}: metadata: {model_errors(err)}") from None
        self.parameters = dict(parameters or {})
        self.params = Params(self.parameters)
        self._spec = spec
        self._steps: dict[str, Step] = {}

    def _add(self, step: Step) -> Step:
        if step.name in self._steps:
            raise SdkError(f"node {step.name!r} is added twice")
        self._steps[step.name] = step
        return step

    def job(self, name: str, job: Callable[..., Any] | str, /, **args: Any) -> Step:
        """A node running a `@job` function (or a job name) with these arguments.

        An argument given as `ref.item` or `each([...])` fans the node out over it.
        """
        return self._add(Step(name, target=target_of(job), args=args))

    def command(
        self, name: str, command: list[Any], /, *, args: list[Any] | None = None, **fields: Any
    ) -> Step:
        """A node running a container command (templates allowed in each element)."""
        return self._add(Step(name, command=list(command), args=args)).set(**fields)

    def gate(
        self, name: str, /, *, timeout_seconds: float | None = None, default: str = "reject"
    ) -> Step:
        """An approval gate (docs/flow-control.md): waits for `shoal resume`, or decides by
        `default` (`approve` or `reject`) after `timeout_seconds`. Chain `.after(step)`;
        later steps read `gate.outputs["approved"]`, `["by"]`, `["message"]`..."""
        spec: dict[str, Any] = {"default": default}
        if timeout_seconds is not None:
            spec["timeout_seconds"] = timeout_seconds
        return self._add(Step(name, gate=spec))

    def child(self, name: str, workflow: Workflow, /, **parameters: Any) -> Step:
        """A child-workflow node (docs/flow-control.md): runs `workflow`'s spec with these
        parameters (references allowed) and takes its outputs, `step.outputs["node"]`."""
        inline = workflow.spec().model_dump(by_alias=True, exclude_defaults=True, mode="json")
        return self._add(Step(name, child={"spec": inline, "parameters": parameters}))

    def template(
        self, name: str, template: Any, /, *, node: str | None = None, **parameters: Any
    ) -> Step:
        """A node from a template (a name or a `WorkflowTemplate` builder): its `node`, or
        its whole DAG (nodes `<name>-<node>`), with these parameters (docs/templates.md)."""
        return self._add(TemplateStep(name, template, node=node, parameters=parameters))

    def __getitem__(self, name: str) -> Step:
        return self._steps[name]

    @property
    def job_functions(self) -> list[Callable[..., Any]]:
        """The job functions the nodes run (what a local run must import)."""
        return [
            s._target.func
            for s in self._steps.values()
            if s._target is not None and s._target.func is not None
        ]

    def spec(self) -> WorkflowSpec:
        """The WorkflowSpec (also what a CronWorkflow stamps out)."""
        known = list(self._steps)
        nodes = [step.build(known) for step in self._steps.values()]
        try:
            return WorkflowSpec.model_validate(
                {**templated(self._spec), "parameters": self.parameters, "nodes": nodes}
            )
        except ValidationError as err:
            raise SdkError(f"workflow {self.metadata.name!r}: {model_errors(err)}") from None

    def build(self) -> WorkflowModel:
        """The API model; SdkError names the node and field of the first problem."""
        return WorkflowModel(metadata=self.metadata, spec=self.spec())
