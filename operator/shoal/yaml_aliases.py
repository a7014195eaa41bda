"""The bound on what YAML aliases may add to a document: a billion-laughs file, or an
anchor whose value contains itself, is refused before anything expands it.

An alias (`*name`, `<<: *name`) is one more reference to a node already read, so a few
hundred bytes can stand for billions of values (each level listing the one before twice),
and `&a [*a]` for an endless one. PyYAML builds either without complaint, sharing the
repeated parts, and every reader after it (the schema check, the validators, `json.dumps`
for the API server) would walk the whole expansion or never end. kubectl refuses such
files too ("excessive aliasing"; "anchor contains itself"). The composed nodes are
measured once each, as the graph they are, with no recursion.
"""

from __future__ import annotations

from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, SequenceNode

from shoal.api.limits import MAX_ALIAS_VALUES

__all__ = ["check_aliases"]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_aliases(root: Node, limit: int = MAX_ALIAS_VALUES) -> None:
    """Raise ComposerError (a YAML error with the place) if a node of the document
    contains itself, or if its aliases add more than `limit` values to what is written."""
    sizes: dict[int, int] = {}  # values under a node, aliases expanded, by node identity
    open_: set[int] = set()  # nodes whose children are being measured
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, measured = stack.pop()
        key = id(node)
        if measured:
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            open_.discard(key)
            continue
        if key in sizes:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_:
                raise ComposerError(
                    None, None, "an alias refers to a node that contains it", child.start_mark
                )
            if id(child) not in sizes:
                stack.append((child, False))
    added = sizes[id(root)] - len(sizes)
    if added > limit:
        raise ComposerError(
            None,
            None,
            f"aliases add {added} values to this document, more than the {limit} allowed",
            root.start_mark,
        )
