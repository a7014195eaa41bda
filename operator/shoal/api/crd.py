"""Generate `crds/*.yaml` and `docs/api.md` from the pydantic models (`make crds`).

The models stay the single source of truth; this module only translates their JSON schema
into what the API server accepts and documents them. `--check` makes CI fail when someone
changes a model without regenerating, so the cluster never validates against a stale schema.

Translation choices (the API server needs a *structural* OpenAPI v3 schema):

- Every `$ref` is inlined and `title`/`const` are dropped.
- `X | None` becomes plain `X` without `nullable`: the API server then drops an explicit
  `null` before validation, which is what `None` means to the models (unset). With
  `nullable: true` a `null` would be stored and `has(self.x)` would be true in CEL rules.
- Unions of different types (`args`, `forEach`, `schedule`) and `Any` cannot be typed
  structurally, so they keep any JSON (`x-kubernetes-preserve-unknown-fields`).
  `int | str` quantities become `x-kubernetes-int-or-string`.
- No `default`s: the API server would write them into every stored object, so a default
  changed in a later release would never reach existing objects (they would look
  user-set), status writes would be defaulted too, and a 1000-node Workflow would grow by
  every defaulted field. The models apply defaults when the operator parses an object;
  the defaults appear in each field's description (`kubectl explain`) and in docs/api.md.
- Cross-field checks of the model validators are mirrored as CEL rules (`RULES`) where
  CEL can see the fields. The API server hides untyped fields from CEL, so a rule that
  reads `forEach`, `args` or `schedule` does not compile: "`itemArg`/`parallelism` need
  `forEach`", the shape of `args` and "at least one trigger" stay with the operator,
  which reports them in `status.message` (and `shoal validate`, before applying).
- Node names are unique through `x-kubernetes-list-type: map` (checked by the API server
  in linear time), not a CEL rule: see `LIST_TYPES` for the cost figures.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import inspect
import itertools
import json
import re
import sys
import textwrap
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from shoal.api.common import API_GROUP, API_VERSION, GROUP_VERSION, ObjectMeta
from shoal.api.cron import AfterTrigger, CronWorkflow
from shoal.api.field_docs import documented_schema, field_doc
from shoal.api.template import ClusterWorkflowTemplate, WorkflowTemplate
from shoal.api.workflow import Node, Workflow, WorkflowSpec

Schema = dict[str, Any]

DOCS_MARKER = "<!-- generated: do not edit below -->"

# Keyword order in the generated schema: stable across pydantic versions and easy to read.
_KEY_ORDER = (
    "description",
    "type",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "maxProperties",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)
_COPIED = frozenset(
    {"type", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum"}
    | {"minItems", "maxItems", "maxProperties", "required"}
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One CEL rule (`x-kubernetes-validations` entry) mirroring a model validator."""

    rule: str
    message: str
    field_path: str | None = None

    def to_schema(self) -> Schema:
        out: Schema = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


# Rules per model, wherever the model appears (Node sits in both kinds). Each reads only
# its own object, so its cost is constant or bounded by `dependsOn` (maxItems 1000,
# maxLength 63: about 1000 per node, 1M for a whole Workflow, of a 100M budget).
RULES: dict[type[BaseModel], tuple[Rule, ...]] = {
    Node: (
        Rule("!(has(self.job) && has(self.command))", "set either `job` or `command`, not both"),
        Rule(
            "has(self.job) || has(self.command) || has(self.image) || has(self.suspend)"
            " || has(self.workflow) || has(self.templateRef)",
            "set `job` (a registered job), `command`/`image` (a container), "
            "`suspend`, `workflow` or `templateRef`",
        ),
        Rule(
            "!has(self.dependsOn) || !(self.name in self.dependsOn)",
            "a node cannot depend on itself",
            ".dependsOn",
        ),
    ),
    WorkflowSpec: (
        Rule(
            "has(self.workflowTemplateRef) != (has(self.nodes) && size(self.nodes) > 0)",
            "set `nodes` (at least one) or `workflowTemplateRef`, not both",
            ".nodes",
        ),
    ),
    AfterTrigger: (
        Rule(
            "has(self.workflow) != has(self.cronWorkflow)",
            "set exactly one of `workflow` or `cronWorkflow`",
        ),
    ),
}

# List semantics the API server enforces natively, in linear time, at no CEL cost, with
# the rule each stands for in docs/api.md. Measured with the API server's own estimator
# and runtime (v1.37), the CEL alternatives do not fit at 1000 nodes:
# `self.nodes.all(n, self.nodes.exists_one(m, m.name == n.name))` is estimated 3x over
# the 10M per-rule limit and, on real input, exceeds the 1M per-call runtime limit past
# about 450 nodes. "Every `dependsOn` entry names a node" is nodes x dependsOn x nodes:
# even as `sets.contains(self.nodes.map(m, m.name), n.dependsOn)` it fits the estimate
# only with `dependsOn` capped at 8 entries and still fails at runtime past about 250
# nodes. The CEL environment of supported clusters (1.30+) cannot build a name set once
# and look names up in constant time, so unknown dependencies and cycles are reported by
# the operator (shoal.core.validation) in `status.message`, and by `shoal validate`.
LIST_TYPES: dict[tuple[type[BaseModel], str], tuple[Schema, str]] = {
    (WorkflowSpec, "nodes"): (
        {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        "node names are unique",
    ),
    (Node, "dependsOn"): ({"x-kubernetes-list-type": "set"}, "no node is listed twice"),
}


@dataclass(frozen=True, slots=True)
class Column:
    """An `additionalPrinterColumns` entry (`kubectl get`)."""

    name: str
    type: str
    path: str
    priority: int = 0

    def to_schema(self) -> Schema:
        out: Schema = {"name": self.name, "type": self.type, "jsonPath": self.path}
        if self.priority:
            out["priority"] = self.priority
        return out


_AGE = Column("Age", "date", ".metadata.creationTimestamp")


@dataclass(frozen=True, slots=True)
class Kind:
    """One custom resource kind and how `kubectl` names and lists it."""

    model: type[BaseModel]
    plural: str
    short_names: tuple[str, ...]
    columns: tuple[Column, ...]
    scope: str = "Namespaced"
    """`Cluster` for ClusterWorkflowTemplate."""

    @property
    def name(self) -> str:
        return self.model.__name__

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{API_GROUP}"


KINDS = (
    Kind(
        Workflow,
        "workflows",
        ("swf",),
        (
            Column("Phase", "string", ".status.phase"),
            Column("Progress", "string", ".status.progress"),
            _AGE,
            Column("Message", "string", ".status.message", priority=1),
        ),
    ),
    Kind(
        CronWorkflow,
        "cronworkflows",
        ("scwf",),
        (
            Column("Schedule", "string", ".spec.schedule"),
            Column("Suspend", "boolean", ".spec.suspend"),
            Column("Last", "date", ".status.lastScheduleTime"),
            # Not `date`: kubectl prints a future time in a date column as <invalid>.
            Column("Next", "string", ".status.nextScheduleTime"),
            _AGE,
        ),
    ),
    Kind(WorkflowTemplate, "workflowtemplates", ("swft",), (_AGE,)),
    Kind(ClusterWorkflowTemplate, "clusterworkflowtemplates", ("scwft",), (_AGE,), "Cluster"),
)


# --- structural schema -------------------------------------------------------------------


def _prose(text: str) -> str:
    """Docstring text as paragraphs: hard-wrapped source lines joined, blank lines kept."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(text))
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def _literal(value: Any) -> str:
    """A default or enum value as a manifest spells it (strings unquoted, the rest JSON)."""
    plain = to_jsonable_python(value)
    return plain if isinstance(plain, str) else json.dumps(plain, separators=(", ", ": "))


def _ordered(schema: Schema) -> Schema:
    return {key: schema[key] for key in _KEY_ORDER if key in schema}


def _json_type(schema: Schema) -> str | None:
    """The JSON type of a union branch (for telling `int | str` from other unions)."""
    if "enum" in schema and "type" not in schema:
        return "string"
    value = schema.get("type")
    return value if isinstance(value, str) else None


class _Structural:
    """Turns one model's JSON schema into a structural OpenAPI v3 schema."""

    def __init__(self, defs: dict[str, Schema]) -> None:
        self.defs = defs
        self.rules = {model.__name__: rules for model, rules in RULES.items()}
        self.list_types = {(m.__name__, f): s for (m, f), (s, _) in LIST_TYPES.items()}

    def convert(self, node: Schema, owner: str | None = None) -> Schema:
        """`node` as a structural schema; `owner` is the model whose properties it lists."""
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            out = self.convert({**self.defs[name], **siblings}, name)
            if name in self.rules:
                out["x-kubernetes-validations"] = [r.to_schema() for r in self.rules[name]]
            return _ordered(out)
        if "anyOf" in node:
            return self._union(node, owner)
        out = {key: node[key] for key in _COPIED if key in node}
        self._bounds(node, out)
        self._describe(node, out)
        if node.get("type") == "object":
            self._object(node, out, owner)
        elif node.get("type") == "array":
            out["items"] = self.convert(node.get("items", {}))
        elif "type" not in node and "enum" not in node:
            out["x-kubernetes-preserve-unknown-fields"] = True
        return _ordered(out)

    def _union(self, node: Schema, owner: str | None) -> Schema:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        if len(branches) == 1:
            return self.convert({**branches[0], **outer}, owner)
        out: Schema = {}
        self._describe(outer, out)
        if {_json_type(b) for b in branches} == {"integer", "string"}:
            out["x-kubernetes-int-or-string"] = True
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
        return _ordered(out)

    def _object(self, node: Schema, out: Schema, owner: str | None) -> None:
        props = node.get("properties")
        if props:
            out["properties"] = {
                name: self._property(owner, name, prop) for name, prop in props.items()
            }
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = self.convert(extra)
        elif extra is True or extra == {}:
            out["x-kubernetes-preserve-unknown-fields"] = True

    def _property(self, owner: str | None, name: str, prop: Schema) -> Schema:
        out = self.convert(prop)
        out.update(self.list_types.get((owner or "", name), {}))
        return _ordered(out)

    @staticmethod
    def _bounds(node: Schema, out: Schema) -> None:
        """JSON Schema 2020-12 exclusive bounds are numbers; OpenAPI v3's are flags."""
        for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if bound in node:
                out[flag] = node[bound]
                out[bound] = True

    @staticmethod
    def _describe(node: Schema, out: Schema) -> None:
        text = _prose(node.get("description", ""))
        default = node.get("default")
        if default is not None and default != {} and default != []:
            text = f"{text}\n\nDefault: `{_literal(default)}`.".strip()
        if text:
            out["description"] = text


def openapi_schema(model: type[BaseModel]) -> Schema:
    """The structural `openAPIV3Schema` of one kind."""
    raw = documented_schema(model)
    schema = _Structural(raw.get("$defs", {})).convert(raw)
    props = schema["properties"]
    props["apiVersion"] = {"description": f"`{GROUP_VERSION}`.", "type": "string"}
    props["kind"] = {"description": f"`{model.__name__}`.", "type": "string"}
    # The API server owns ObjectMeta's schema; a CRD may only say it is an object.
    props["metadata"] = {"type": "object"}
    # Known status fields stay typed; unknown ones survive a downgrade of the operator.
    if "status" in props:  # templates have none
        props["status"]["x-kubernetes-preserve-unknown-fields"] = True
        props["status"] = _ordered(props["status"])
    return schema


def crd(kind: Kind) -> Schema:
    """The CustomResourceDefinition manifest of one kind."""
    version: Schema = {
        "name": API_VERSION,
        "served": True,
        "storage": True,
        **({"subresources": {"status": {}}} if "status" in kind.model.model_fields else {}),
        "additionalPrinterColumns": [c.to_schema() for c in kind.columns],
        "schema": {"openAPIV3Schema": openapi_schema(kind.model)},
    }
    names: Schema = {
        "kind": kind.name,
        "listKind": f"{kind.name}List",
        "plural": kind.plural,
        "singular": kind.name.lower(),
        "shortNames": list(kind.short_names),
        "categories": ["shoal"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {"group": API_GROUP, "names": names, "scope": kind.scope, "versions": [version]},
    }


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors, multi-line strings as `|` literals: readable diffs."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render_crd(kind: Kind) -> str:
    header = "# Generated from operator/shoal/api by `make crds` (shoal.api.crd). Do not edit.\n"
    body = yaml.dump(crd(kind), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return header + body


# --- docs/api.md -------------------------------------------------------------------------

_DEFAULT_INTRO = """\
# API reference

Shoal's custom resources live in the API group `shoal.dev`, version `v1alpha1`.
Everything below the marker line is generated from the pydantic models in
`operator/shoal/api/` by `make crds`; edit the models' docstrings, not this page.
Text above the marker is kept as written.
"""


def _types_in(annotation: Any) -> Iterator[type]:
    """Model and enum classes mentioned anywhere in a field annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel | Enum):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _types_in(arg)


def _reachable(roots: Sequence[type[BaseModel]]) -> list[type]:
    """Models and enums reachable from `roots`, in order of first mention."""
    seen: list[type] = []
    queue: list[type] = list(roots)
    while queue:
        cls = queue.pop(0)
        if cls in seen or cls is ObjectMeta:
            continue
        seen.append(cls)
        if issubclass(cls, BaseModel):
            for info in cls.model_fields.values():
                queue.extend(_types_in(info.annotation))
    return seen


_OBJECT_META_DOCS = (
    "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/"
)


def _anchor(name: str) -> str:
    target = _OBJECT_META_DOCS if name == ObjectMeta.__name__ else f"#{name.lower()}"
    return f"[{name}]({target})"


def _constraints(schema: Schema) -> str:
    parts = []
    low, high = schema.get("minimum"), schema.get("maximum")
    if "exclusiveMinimum" in schema:
        parts.append(f"> {schema['exclusiveMinimum']}")
    if low is not None:
        parts.append(f"≥ {low}")
    if high is not None:
        parts.append(f"≤ {high}")
    for key, label in (("minLength", "chars ≥"), ("maxLength", "chars ≤")):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    for key, label in (
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
        ("maxProperties", "keys ≤"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    return f" ({', '.join(parts)})" if parts else ""


def _type_text(schema: Schema) -> str:
    """A field's type in words, linking model and enum types to their sections."""
    if "$ref" in schema:
        return _anchor(schema["$ref"].rsplit("/", 1)[-1])
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        return " or ".join(_type_text(b) for b in branches)
    if "const" in schema:
        return f"`{_literal(schema['const'])}`"
    kind = schema.get("type")
    if kind == "array":
        return f"list of {_type_text(schema.get('items', {}))}{_constraints(schema)}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        value = _type_text(extra) if isinstance(extra, dict) and extra else "any JSON"
        return f"map of {value}"
    if kind is None:
        return "any JSON"
    return f"{kind}{_constraints(schema)}"


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return "`{}`" if isinstance(value, BaseModel) else f"`{_literal(value)}`"
    if info.default is None or info.default is PydanticUndefined:
        return ""
    return f"`{_literal(info.default)}`"


def _cell(text: str) -> str:
    return _prose(text).replace("|", "\\|").replace("\n\n", "<br><br>")


def _field_table(model: type[BaseModel], defs: dict[str, Schema]) -> list[str]:
    """One row per field, then the checks the API server makes on this type."""
    props = defs[model.__name__]["properties"]
    lines = ["| Field | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        alias = info.alias or name
        type_text = _cell(_type_text(props[alias]))
        row = (f"`{alias}`", type_text, _default_text(info), _cell(field_doc(model, name)))
        lines.append("| " + " | ".join(row) + " |")
    checks = [f"`{f}`: {note}" for (m, f), (_, note) in LIST_TYPES.items() if m is model]
    checks += [rule.message for rule in RULES.get(model, ())]
    if checks:
        lines += ["", "Checked by the API server at `kubectl apply` time:", ""]
        lines += [f"- {check}" for check in checks]
    return [*lines, ""]


def _model_section(model: type[BaseModel], defs: dict[str, Schema]) -> list[str]:
    return [
        f"### {model.__name__}",
        "",
        _prose(model.__doc__ or ""),
        "",
        *_field_table(model, defs),
    ]


def _member_docs(enum: type[Enum]) -> dict[str, str]:
    """Docstrings written under enum members (Python keeps none at runtime)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(enum)))
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    for stmt, after in itertools.pairwise(body):
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else None
        value = after.value if isinstance(after, ast.Expr) else None
        text = value.value if isinstance(value, ast.Constant) else None
        if isinstance(target, ast.Name) and isinstance(text, str):
            docs[target.id] = _prose(text)
    return docs


def _enum_section(enum: type[Enum]) -> list[str]:
    docs = _member_docs(enum)
    lines = [f"### {enum.__name__}", "", _prose(enum.__doc__ or ""), ""]
    for member in enum:
        note = docs.get(member.name)
        lines.append(f"- `{member.value}`" + (f": {note}" if note else ""))
    return [*lines, ""]


def _kind_section(kind: Kind, defs: dict[str, Schema]) -> list[str]:
    columns = ", ".join(c.name + (" (`-o wide`)" if c.priority else "") for c in kind.columns)
    return [
        f"## {kind.name}",
        "",
        _prose(kind.model.__doc__ or ""),
        "",
        f"- `apiVersion: {GROUP_VERSION}`, `kind: {kind.name}`, "
        + ("namespaced" if kind.scope == "Namespaced" else "cluster-scoped"),
        f"- `kubectl get {kind.plural}` (short name `{', '.join(kind.short_names)}`,"
        " category `shoal`) shows: " + columns,
        "- `spec` is written by you"
        + (", `status` by the operator." if "status" in kind.model.model_fields else "."),
        "",
        *_field_table(kind.model, defs),
    ]


def render_docs(existing: str | None) -> str:
    """docs/api.md: the hand-written intro above the marker, the reference below it."""
    # Without a marker, the whole page counts as intro: hand-written text is never lost.
    intro = (existing or "").split(DOCS_MARKER, 1)[0].strip() or _DEFAULT_INTRO.strip()
    lines = [intro, "", DOCS_MARKER, ""]
    defs: dict[str, Schema] = {}
    for kind in KINDS:
        schema = documented_schema(kind.model)
        defs.update({**schema.pop("$defs", {}), kind.name: schema})
    for kind in KINDS:
        lines += _kind_section(kind, defs)
    lines += ["## Types", ""]
    roots = [kind.model for kind in KINDS]
    for cls in _reachable(roots)[len(roots) :]:
        is_model = issubclass(cls, BaseModel)
        lines += _model_section(cls, defs) if is_model else _enum_section(cls)
    return "\n".join(lines).rstrip("\n") + "\n"


# --- command line ------------------------------------------------------------------------


def render_editor_schema(kind: Kind) -> str:
    """A JSON Schema of one kind for editors (yaml-language-server), from the same models.

    The CRD's schema is what the API server enforces; this one also carries the models'
    field descriptions and refuses unknown fields, so an editor completes and flags them.
    """
    schema = documented_schema(kind.model)
    schema.get("properties", {}).pop("status", None)
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://shoal.dev/schemas/{kind.name.lower()}.schema.json",
        **schema,
        "title": f"{kind.name} ({GROUP_VERSION})",
    }
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def generate(crd_dir: Path, docs_path: Path, schema_dir: Path | None = None) -> dict[Path, str]:
    """Every generated file and its content (reads the docs page for its intro)."""
    files = {crd_dir / f"{kind.crd_name}.yaml": render_crd(kind) for kind in KINDS}
    existing = docs_path.read_text(encoding="utf-8") if docs_path.exists() else None
    files[docs_path] = render_docs(existing)
    if schema_dir is not None:
        for kind in KINDS:
            files[schema_dir / f"{kind.name.lower()}.schema.json"] = render_editor_schema(kind)
    return files


def stale(files: dict[Path, str]) -> list[Path]:
    """Generated files whose content on disk differs (or that are missing)."""
    return [
        path
        for path, text in files.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def _diff(path: Path, text: str, limit: int = 40) -> str:
    old = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    lines = list(difflib.unified_diff(old, text.splitlines(), str(path), "generated", lineterm=""))
    more = f"\n... ({len(lines) - limit} more diff lines)" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shoal.api.crd", description=__doc__)
    parser.add_argument("crd_dir", type=Path, help="directory for the CRD manifests")
    parser.add_argument("--docs", type=Path, default=Path("docs/api.md"), help="API reference")
    parser.add_argument(
        "--schemas", type=Path, default=None, help="directory for editors' JSON Schemas"
    )
    parser.add_argument("--check", action="store_true", help="fail if any file is out of date")
    args = parser.parse_args(argv)
    files = generate(args.crd_dir, args.docs, args.schemas)
    if args.check:
        out_of_date = stale(files)
        for path in out_of_date:
            print(_diff(path, files[path]), file=sys.stderr)
        for path in out_of_date:
            print(f"{path} is out of date with operator/shoal/api.", file=sys.stderr)
        if out_of_date:
            print("Run `make crds` and commit the result.", file=sys.stderr)
            return 1
        print(f"{len(files)} generated files are up to date.")
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
