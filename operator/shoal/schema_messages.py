"""pydantic's schema errors as Problems a user can act on.

Each error is located by node name (not list index) and field path; an unknown field gets
a did-you-mean from the fields the model at that place really has; a name that breaks a
Kubernetes naming rule gets the rule in words instead of a regular expression.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from shoal.api.common import DNS_LABEL, DNS_SUBDOMAIN
from shoal.core.validation import Problem

__all__ = ["problems_from"]

# Where a DAG's node list sits: in a Workflow, and in a CronWorkflow's workflowSpec.
NODE_LISTS = (("spec", "nodes"), ("spec", "workflowSpec", "nodes"))

_RULES = {
    DNS_LABEL: (
        "must be lowercase letters, digits or '-', starting and ending with a "
        "letter or digit (for example 'load-data')"
    ),
    DNS_SUBDOMAIN: (
        "must be lowercase letters, digits, '-' or '.', starting and ending with a letter "
        "or digit, each '.'-separated part too (for example 'nightly-etl')"
    ),
    r"^[-._a-zA-Z][-._a-zA-Z0-9]*$": (
        "must start with a letter, '_', '-' or '.', followed by letters, digits, '_', '-' "
        "or '.' (for example 'API_URL')"
    ),
}


def _field_path(loc: Sequence[int | str], raw: Any) -> tuple[str | None, str]:
    """Turn a pydantic error location into (node name, dotted field path)."""
    node: str | None = None
    parts = [str(p) for p in loc]
    for prefix in NODE_LISTS:
        n = len(prefix)
        if len(parts) > n and tuple(parts[:n]) == prefix:
            index = loc[n]
            nodes: Any = raw
            for key in prefix:
                nodes = nodes.get(key) if isinstance(nodes, dict) else None
            if isinstance(index, int) and isinstance(nodes, list) and index < len(nodes):
                name = nodes[index].get("name") if isinstance(nodes[index], dict) else None
                node = str(name) if name else f"#{index + 1}"
            return node, ".".join(parts[n + 1 :]) or "node"
    return None, ".".join(parts) or "document"


def _inner(annotation: Any, want: type) -> Any:
    """The first part of a (possibly Optional/Union) annotation whose origin is `want`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(annotation):
            found = _inner(arm, want)
            if found is not None:
                return found
        return None
    if want is BaseModel:
        return (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return annotation if origin is want else None


def _model_at(model: type[BaseModel], path: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that holds the mapping at `path` below `model`, or None."""
    here: Any = model
    for part in path:
        if (cls := _inner(here, BaseModel)) is not None and isinstance(part, str):
            fields = {f.alias or name: f for name, f in cls.model_fields.items()}
            if part not in fields:
                return None
            here = fields[part].annotation
        elif (seq := _inner(here, list)) is not None and isinstance(part, int):
            here = typing.get_args(seq)[0]
        elif (table := _inner(here, dict)) is not None:
            here = typing.get_args(table)[1]
        else:
            return None
    found = _inner(here, BaseModel)
    return found if isinstance(found, type) else None


def _unknown_field(model: type[BaseModel] | None, loc: Sequence[int | str]) -> str:
    name = str(loc[-1]) if loc else ""
    holder = _model_at(model, list(loc[:-1])) if model is not None else None
    if holder is None:
        return "unknown field"
    known = [f.alias or n for n, f in holder.model_fields.items()]
    lowered = {k.lower(): k for k in known}
    close = [lowered[name.lower()]] if name.lower() in lowered else []
    close = close or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown field (did you mean {close[0]!r}?)"
    return f"unknown field (known here: {', '.join(sorted(known))})"


def _message(item: Any, model: type[BaseModel] | None, loc: Sequence[int | str]) -> str:
    kind = item.get("type")
    if kind == "extra_forbidden":
        return _unknown_field(model, loc)
    if kind == "string_pattern_mismatch":
        rule = _RULES.get(str((item.get("ctx") or {}).get("pattern")))
        if rule is not None:
            return rule
    return str(item["msg"]).removeprefix("Value error, ")


def problems_from(
    error: ValidationError, raw: Any, model: type[BaseModel] | None = None
) -> list[Problem]:
    """One Problem per pydantic error, located by node name where possible."""
    problems = []
    for item in error.errors():
        # Drop pydantic's union branch markers (e.g. `list[...]`) from the location.
        loc = [p for p in item["loc"] if not (isinstance(p, str) and "[" in p)]
        node, field = _field_path(loc, raw)
        problems.append(Problem(_message(item, model, loc), node, field))
    return problems
