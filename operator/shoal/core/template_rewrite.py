"""Rewriting a template's expressions for the place a reference puts them.

A template's node reads its template's parameters (`params.x`) and its sibling nodes
(`nodes.a`). Expanded into a Workflow, `params.x` becomes the value (or the expression)
the reference bound to it, and `nodes.a` becomes the renamed sibling (`nodes["ref-a"]`).
The rewrite works on CEL tokens: string literals are copied untouched, so a literal that
happens to contain `params.x` keeps its text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Rewrite",
    "as_expression",
    "node_reads",
    "rewrite_expression",
    "rewrite_value",
]

_STRING = (
    r"""[rRbB]?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
)
_TOKEN = re.compile(
    rf"(?P<str>{_STRING})"
    r"|(?<![.\w])(?P<root>params|nodes)\s*(?:\.\s*(?P<dot>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\[\s*(?P<q>['\"])(?P<idx>[^'\"\\]*)(?P=q)\s*\])"
)
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_WHOLE_TEMPLATE = re.compile(r"^\s*\$\{\{(.*?)\}\}\s*$", re.DOTALL)

Rewrite = tuple[Mapping[str, str], Mapping[str, str]]
"""(parameter name -> CEL text that replaces `params.<name>`,
node name -> the node's new name)."""


def rewrite_expression(source: str, rewrite: Rewrite) -> str:
    """`source` (bare CEL) with the bound parameters and renamed nodes substituted."""
    params, nodes = rewrite

    def swap(match: re.Match[str]) -> str:
        root = match.group("root")
        if root is None:
            return match.group(0)
        name = match.group("dot") or match.group("idx")
        if root == "params" and name in params:
            return f"({params[name]})"
        if root == "nodes" and name in nodes:
            return f"nodes[{json.dumps(nodes[name])}]"
        return match.group(0)

    return _TOKEN.sub(swap, source)


def _in_templates(text: str, rewrite: Rewrite) -> str:
    return _TEMPLATE.sub(lambda m: "${{" + rewrite_expression(m.group(1), rewrite) + "}}", text)


def rewrite_value(value: Any, rewrite: Rewrite, bare_keys: frozenset[str] = frozenset()) -> Any:
    """A node's wire form with every `${{ }}` template rewritten; `bare_keys` name the
    fields whose whole string is CEL (`when`)."""
    if isinstance(value, str):
        return _in_templates(value, rewrite)
    if isinstance(value, list):
        return [rewrite_value(v, rewrite) for v in value]
    if isinstance(value, dict):
        return {
            k: rewrite_expression(v, rewrite)
            if k in bare_keys and isinstance(v, str)
            else rewrite_value(v, rewrite)
            for k, v in value.items()
        }
    return value


def as_expression(value: Any) -> str:
    """The CEL text of a bound parameter value: a whole `${{ expr }}` is `expr` (its
    type kept), text with templates inside is a concatenation, anything else a literal."""
    if isinstance(value, str):
        whole = _WHOLE_TEMPLATE.match(value)
        if whole:
            return whole.group(1).strip()
        if "${{" in value:
            parts: list[str] = []
            last = 0
            for match in _TEMPLATE.finditer(value):
                if match.start() > last:
                    parts.append(json.dumps(value[last : match.start()]))
                parts.append(f"string({match.group(1).strip()})")
                last = match.end()
            if last < len(value):
                parts.append(json.dumps(value[last:]))
            return " + ".join(parts)
    return json.dumps(value)


def node_reads(value: Any, bare_keys: frozenset[str] = frozenset()) -> set[str]:
    """Node names a node's wire form reads in its expressions (statically)."""
    found: set[str] = set()

    def scan(source: str) -> None:
        for match in _TOKEN.finditer(source):
            if match.group("root") == "nodes":
                found.add(match.group("dot") or match.group("idx"))

    _walk(value, bare_keys, scan)
    return found


def _walk(value: Any, bare_keys: frozenset[str], scan: Callable[[str], None]) -> None:
    if isinstance(value, str):
        for match in _TEMPLATE.finditer(value):
            scan(match.group(1))
    elif isinstance(value, list):
        for v in value:
            _walk(v, frozenset(), scan)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k in bare_keys and isinstance(v, str):
                scan(v)
            else:
                _walk(v, frozenset(), scan)
