"""References to parameters and node outputs, written as `${{ }}` templates.

A `Ref` is a CEL expression that knows where it came from: passing one as a job
argument renders `${{ nodes.markets.outputs.market_ids }}`, makes the reading node
depend on `markets`, and (when the producing job declares typed outputs) lets the
builder check the edge. `str(ref)` gives the template, so refs also work in f-strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["FanOut", "Ref", "SdkError", "each", "member", "sequence"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SdkError(ValueError):
    """A workflow built in code is wrong; the message names the node and the argument."""


def member(base: str, key: str) -> str:
    """`base.key`, or `base["key"]` when the key is not a CEL identifier (`data-proxy`)."""
    if _IDENTIFIER.match(key):
        return f"{base}.{key}"
    return f'{base}["{key}"]'


@dataclass(frozen=True, slots=True)
class Ref:
    """A CEL expression over `params` and `nodes`, usable wherever the YAML takes one."""

    expr: str
    """The CEL source, as `when` takes it (no `${{ }}`)."""
    node: str | None = None
    """The node whose outputs or phase this reads, if any."""
    type: Any = None
    """The Python type of the value, when the producing job declares it."""
    outputs: dict[str, Any] | None = None
    """Declared output names and types below this reference (typed job outputs)."""

    def __str__(self) -> str:
        return "${{ " + self.expr + " }}"

    def __getitem__(self, key: str) -> Ref:
        """A field of this value; a declared output's name is checked here."""
        if self.outputs is not None and key not in self.outputs:
            known = ", ".join(sorted(self.outputs)) or "none"
            raise SdkError(f"node {self.node!r}: no output {key!r}; its job declares: {known}")
        kind = self.outputs.get(key) if self.outputs is not None else None
        return Ref(member(self.expr, key), self.node, kind)

    @property
    def item(self) -> FanOut:
        """Fan out over this list: one pod per element, the element as the argument."""
        return FanOut(self)


@dataclass(frozen=True, slots=True)
class FanOut:
    """A job argument that takes each element of a list in turn (forEach + itemArg), or
    each integer of a sequence (withSequence + itemArg)."""

    values: Ref | list[Any]
    sequence: dict[str, Any] | None = None
    """`withSequence`'s fields (camelCase), when this fans out over integers."""


def each(values: Ref | list[Any]) -> FanOut:
    """Fan out over a literal list or a reference to one (`each([1, 2, 3])`)."""
    if isinstance(values, list) and not values:
        raise SdkError("each(): an empty list would never run a pod")
    return FanOut(values)


def sequence(
    count: int | Ref | None = None,
    *,
    start: int | Ref | None = None,
    end: int | Ref | None = None,
    format: str | None = None,
) -> FanOut:
    """Fan out over integers (`withSequence`): `count` of them from `start` (default 0),
    or `start`..`end` inclusive; `format` (`"shard-%02d"`) makes each item a string."""
    if (count is None) == (end is None):
        raise SdkError("sequence(): give either count or end")
    fields = {"count": count, "start": start, "end": end, "format": format}
    return FanOut([], {k: templated(v) for k, v in fields.items() if v is not None})


def templated(value: Any) -> Any:
    """`value` as the manifest holds it: every Ref inside turned into its template."""
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, dict):
        return {str(k): templated(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [templated(v) for v in value]
    if isinstance(value, FanOut):
        raise SdkError("each()/.item is only allowed as a job argument itself")
    return value
