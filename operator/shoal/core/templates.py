"""Resolving template references: a Workflow spec + the templates it names -> a plain spec.

Pure, like the rest of core/: the adapters fetch the templates (the operator and the
admission webhook from the API server, `shoal validate`/`run` from `--templates` files)
and hand them in as a mapping; this module expands `spec.workflowTemplateRef` and every
node's `templateRef`, nested templates included, and reports every problem with the node
and field that caused it. The result compiles like any hand-written spec
(`core/validation.compile_workflow`). Shapes and rules: docs/templates.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shoal.api.cron import AFTER_PARAMETERS, POLL_PARAMETERS
from shoal.api.limits import MAX_NAME_LENGTH, MAX_NODES, MAX_TEMPLATE_DEPTH, MAX_TEMPLATES
from shoal.api.workflow import Node, WorkflowSpec
from shoal.core.template_rewrite import as_expression, node_reads, rewrite_value
from shoal.core.validation import InvalidWorkflow, Problem

__all__ = [
    "Resolved",
    "Template",
    "TemplateKey",
    "TemplatesNeeded",
    "missing_templates",
    "references",
    "resolve_spec",
    "uses_templates",
]

TemplateKey = tuple[bool, str]
"""(cluster-scoped, name): a ClusterWorkflowTemplate and a WorkflowTemplate may share a name."""

_BARE = frozenset({"when"})
_TRIGGER_PARAMETERS = frozenset({"scheduledTime", *POLL_PARAMETERS, *AFTER_PARAMETERS})
"""What a CronWorkflow adds to the runs it stamps: passed on without a declaration."""
_SUB_DAG_FIELDS = frozenset(
    {"name", "template_ref", "parameters", "depends_on", "when", "run_policy"}
)


@dataclass(frozen=True, slots=True)
class Template:
    """One template as an adapter read it."""

    cluster: bool
    name: str
    spec: WorkflowSpec
    version: str = ""
    """The API server's resourceVersion (empty for a local file): recorded at start."""
    uid: str = ""

    @property
    def key(self) -> TemplateKey:
        return (self.cluster, self.name)

    @property
    def kind(self) -> str:
        return "ClusterWorkflowTemplate" if self.cluster else "WorkflowTemplate"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r}"


@dataclass(frozen=True, slots=True)
class Resolved:
    """The plain spec and the templates it was made from (what the operator records)."""

    spec: WorkflowSpec
    templates: tuple[Template, ...]


class TemplatesNeeded(InvalidWorkflow):
    """The spec refers to templates and the caller handed none in (it cannot read them)."""


class _RefError(Exception):
    def __init__(self, message: str, field: str, node: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.node = node


def _label(key: TemplateKey) -> str:
    return f"{'ClusterWorkflowTemplate' if key[0] else 'WorkflowTemplate'} {key[1]!r}"


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def references(spec: WorkflowSpec) -> set[TemplateKey]:
    """The templates `spec` names directly."""
    found: set[TemplateKey] = set()
    if spec.workflow_template_ref is not None:
        ref = spec.workflow_template_ref
        found.add((ref.cluster_scope, ref.name))
    for node in spec.nodes:
        if node.template_ref is not None:
            found.add((node.template_ref.cluster_scope, node.template_ref.name))
    return found


def uses_templates(spec: WorkflowSpec) -> bool:
    return bool(references(spec))


def missing_templates(
    spec: WorkflowSpec, templates: Mapping[TemplateKey, Template]
) -> set[TemplateKey]:
    """Templates still to fetch: named by `spec` or by a template already at hand."""
    wanted = references(spec)
    for template in templates.values():
        wanted |= references(template.spec)
    return wanted - set(templates)


def resolve_spec(
    spec: WorkflowSpec, templates: Mapping[TemplateKey, Template], source: str | None = None
) -> Resolved:
    """`spec` with every reference expanded; InvalidWorkflow names each problem."""
    resolver = _Resolver(templates)
    try:
        merged = resolver.whole(spec)
        nodes = merged["nodes"]
    except _RefError as err:
        raise InvalidWorkflow([Problem(err.message, err.node, err.field)], source) from None
    if resolver.problems:
        raise InvalidWorkflow(resolver.problems, source)
    merged["nodes"] = [n.dump() for n in nodes]
    try:
        resolved = WorkflowSpec.model_validate(merged)
    except ValidationError as err:
        problems = [
            Problem(f"after expanding templates: {e['msg']}", field=".".join(map(str, e["loc"])))
            for e in err.errors()[:20]
        ]
        raise InvalidWorkflow(problems, source) from None
    return Resolved(resolved, tuple(resolver.used.values()))


class _Resolver:
    """One resolution: the templates handed in, the ones used, the problems found."""

    def __init__(self, templates: Mapping[TemplateKey, Template]) -> None:
        self.templates = templates
        self.used: dict[TemplateKey, Template] = {}
        self.problems: list[Problem] = []

    def whole(self, spec: WorkflowSpec) -> dict[str, Any]:
        """The spec's fields, with `workflowTemplateRef` merged in and `nodes` expanded."""
        ref = spec.workflow_template_ref
        if ref is None:
            own = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
            return {**own, "nodes": self.expand(spec.nodes, (), top=True)}
        key = (ref.cluster_scope, ref.name)
        template = self.template(key, (), "spec.workflowTemplateRef.name")
        undeclared = sorted(
            set(spec.parameters) - set(template.spec.parameters) - _TRIGGER_PARAMETERS
        )
        for name in undeclared:
            msg = f"{template.label} declares no parameter {name!r}"
            self.problems.append(
                Problem(
                    msg + _suggest(name, template.spec.parameters), field=f"spec.parameters.{name}"
                )
            )
        try:
            nodes = self.expand(template.spec.nodes, (key,))
        except _RefError as err:
            raise _RefError(
                f"in {template.label}: {err.message}", "spec.workflowTemplateRef"
            ) from None
        base = template.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        own = spec.model_dump(
            by_alias=True,
            exclude_none=True,
            exclude_unset=True,
            mode="json",
            exclude={"workflow_template_ref", "nodes", "parameters"},
        )
        params = {**template.spec.parameters, **spec.parameters}
        return {**base, **own, "parameters": params, "nodes": nodes}

    def template(self, key: TemplateKey, chain: tuple[TemplateKey, ...], field: str) -> Template:
        if key in chain:
            path = " -> ".join(_label(k) for k in (*chain[chain.index(key) :], key))
            raise _RefError(f"template cycle: {path}", field)
        if len(chain) >= MAX_TEMPLATE_DEPTH:
            path = " -> ".join(_label(k) for k in (*chain, key))
            raise _RefError(
                f"templates nest deeper than {MAX_TEMPLATE_DEPTH} levels "
                f"(limit MAX_TEMPLATE_DEPTH): {path}",
                field,
            )
        template = self.templates.get(key)
        if template is None:
            known = [name for cluster, name in self.templates if cluster == key[0]]
            raise _RefError(f"{_label(key)} not found{_suggest(key[1], known)}", field)
        if template.spec.workflow_template_ref is not None:
            msg = (
                f"{template.label} itself uses workflowTemplateRef; "
                "a template may only use node templateRefs"
            )
            raise _RefError(msg, field)
        self.used[key] = template
        if len(self.used) > MAX_TEMPLATES:
            raise _RefError(
                f"uses more than {MAX_TEMPLATES} templates (limit MAX_TEMPLATES)", field
            )
        return template

    def expand(
        self, nodes: list[Node], chain: tuple[TemplateKey, ...], *, top: bool = False
    ) -> list[Node]:
        """`nodes` with each reference replaced; at the top level problems are collected
        per node, inside a template the first one ends (its chain names where)."""
        out: list[Node] = []
        leaves: dict[str, tuple[str, list[str]]] = {}
        for node in nodes:
            if node.template_ref is None:
                out.append(node)
                continue
            try:
                made, sub_leaves = self.reference(node, chain)
            except _RefError as err:
                if not top:
                    raise _RefError(f"node {node.name!r}: {err.message}", err.field) from None
                self.problems.append(Problem(err.message, node.name, err.field))
                continue
            out.extend(made)
            if sub_leaves is not None:
                leaves[node.name] = (node.template_ref.name, sub_leaves)
            if len(out) > MAX_NODES:
                msg = f"expanding templates makes more than {MAX_NODES} nodes (limit MAX_NODES)"
                raise _RefError(msg, "templateRef")
        out = _point_at_leaves(out, leaves)
        _check_names(out, nodes)
        return out

    def reference(
        self, node: Node, chain: tuple[TemplateKey, ...]
    ) -> tuple[list[Node], list[str] | None]:
        """The nodes one reference becomes, and the sub-DAG's leaves (None for `node:`)."""
        ref = node.template_ref
        assert ref is not None
        key = (ref.cluster_scope, ref.name)
        template = self.template(key, chain, "templateRef.name")
        try:
            inner = self.expand(template.spec.nodes, (*chain, key))
        except _RefError as err:
            raise _RefError(f"in {template.label}: {err.message}", err.field) from None
        params = _bind(template, node)
        if ref.node is not None:
            return [_one_node(node, template, inner, params)], None
        return _sub_dag(node, template, inner, params)


def _bind(template: Template, node: Node) -> dict[str, str]:
    """Each template parameter's CEL text: the reference's value, else the default."""
    given = node.parameters or {}
    for name in given:
        if name not in template.spec.parameters:
            msg = f"{template.label} declares no parameter {name!r}"
            raise _RefError(msg + _suggest(name, template.spec.parameters), f"parameters.{name}")
    values = {**template.spec.parameters, **given}
    return {name: as_expression(value) for name, value in values.items()}


def _one_node(node: Node, template: Template, inner: list[Node], params: dict[str, str]) -> Node:
    """The template's node `templateRef.node`, with this node's own fields on top."""
    assert node.template_ref is not None
    assert node.template_ref.node is not None
    wanted = node.template_ref.node
    found = next((n for n in inner if n.name == wanted), None)
    if found is None:
        names = [n.name for n in inner]
        msg = f"{template.label} has no node {wanted!r}{_suggest(wanted, names)}"
        raise _RefError(msg, "templateRef.node")
    body = found.dump()
    if found.depends_on or node_reads(body, _BARE):
        msg = (
            f"node {wanted!r} of {template.label} depends on or reads other nodes of it; "
            "reuse the whole template (templateRef without `node`)"
        )
        raise _RefError(msg, "templateRef.node")
    body = rewrite_value(body, (params, {}), _BARE)
    own = node.model_dump(
        by_alias=True, exclude_unset=True, mode="json", exclude={"template_ref", "parameters"}
    )
    merged = {k: v for k, v in body.items() if k not in ("name", "dependsOn")}
    if "when" in own and "when" in merged:
        own["when"] = f"({merged['when']}) && ({own['when']})"
    merged.update(own)
    return _node(merged, template, wanted)


def _sub_dag(
    node: Node, template: Template, inner: list[Node], params: dict[str, str]
) -> tuple[list[Node], list[str]]:
    """The template's whole DAG in this node's place, its nodes named `<node>-<name>`."""
    extra = sorted(set(node.model_fields_set) - _SUB_DAG_FIELDS)
    if extra:
        fields = ", ".join(Node.model_fields[f].alias or f for f in extra)
        msg = (
            "a reference to a whole template takes only dependsOn, when and runPolicy; "
            f"not {fields}"
        )
        raise _RefError(msg, "templateRef")
    if template.spec.on_exit is not None:
        msg = f"{template.label} has an onExit node; only workflowTemplateRef runs it"
        raise _RefError(msg, "templateRef")
    renamed = {n.name: f"{node.name}-{n.name}" for n in inner}
    for new in renamed.values():
        if len(new) > MAX_NAME_LENGTH:
            msg = (
                f"expanded node name {new!r} is longer than {MAX_NAME_LENGTH} characters; "
                f"shorten {node.name!r}"
            )
            raise _RefError(msg, "name")
    depended = {d for n in inner for d in n.depends_on}
    made: list[Node] = []
    for sub in inner:
        body = rewrite_value(sub.dump(), (params, renamed), _BARE)
        body["name"] = renamed[sub.name]
        body["dependsOn"] = [renamed.get(d, d) for d in sub.depends_on]
        if not sub.depends_on:
            body["dependsOn"] = list(node.depends_on)
            body["runPolicy"] = node.run_policy.value
        if node.when is not None:
            body["when"] = f"({node.when}) && ({body['when']})" if "when" in body else node.when
        made.append(_node(body, template, sub.name))
    leaves = [renamed[n.name] for n in inner if n.name not in depended]
    return made, leaves


def _node(body: dict[str, Any], template: Template, name: str) -> Node:
    try:
        return Node.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"]))
        msg = f"node {name!r} of {template.label} with this reference's fields: {where}: "
        msg += str(first["msg"])
        raise _RefError(msg, "templateRef") from None


def _point_at_leaves(nodes: list[Node], leaves: dict[str, tuple[str, list[str]]]) -> list[Node]:
    """`dependsOn: [ref]` on a sub-DAG reference waits for the sub-DAG's leaves."""
    if not leaves:
        return nodes
    out = []
    for node in nodes:
        reads = node_reads(node.dump(), _BARE) & set(leaves)
        for name in sorted(reads):
            template, names = leaves[name]
            hint = ", ".join(f"nodes[{n!r}]" for n in names)
            msg = (
                f"reads nodes.{name}, a whole WorkflowTemplate {template!r}; read one of its "
                f"nodes instead: {hint}"
            )
            raise _RefError(msg, "args", node.name)
        if not set(node.depends_on) & set(leaves):
            out.append(node)
            continue
        deps: list[str] = []
        for dep in node.depends_on:
            for name in leaves[dep][1] if dep in leaves else [dep]:
                if name not in deps:
                    deps.append(name)
        out.append(node.model_copy(update={"depends_on": deps}))
    return out


def _check_names(nodes: list[Node], given: list[Node]) -> None:
    """An expanded name that another node already has, named with both origins."""
    seen: set[str] = set()
    mine = {n.name for n in given}
    for node in nodes:
        if node.name in seen:
            origin = "written in the spec" if node.name in mine else "from a template"
            msg = f"expanding templates makes a second node {node.name!r} ({origin})"
            raise _RefError(msg, "name", node.name)
        seen.add(node.name)
