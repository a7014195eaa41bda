"""Expressions that are bare dotted paths (`params.name`, `nodes.a.outputs.x`), compiled
without loading CEL.

Loading the CEL extension (and the `logging` it brings) is a sizeable share of `shoal
validate`'s start-up, and most templates are plain reads of a parameter or an output. For
those, what validation needs (the variables read, the nodes and parameters referred to) is
known from the text alone, so `core/expressions.py` asks here first. The CEL program is
still what evaluates them: `LazyProgram` compiles it on first evaluation, so a value never
differs from CEL's, and a file that is only validated never loads CEL at all.

The shortcut is deliberately narrow (plain ASCII identifiers joined by `.`, no reserved
word, a known root variable, no later segment that the reference scanners of
`core/expressions.py` would read as `nodes` or `params`); anything else goes to CEL as
before. tests/unit/test_bare_paths.py checks every accepted spelling against CEL's own
compile and the scanners' reading.
"""

from __future__ import annotations

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` its import
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["CEL_RESERVED", "BarePath", "LazyProgram", "bare_path"]

CEL_RESERVED = frozenset(
    {
        "as",
        "break",
        "const",
        "continue",
        "else",
        "false",
        "for",
        "function",
        "if",
        "import",
        "in",
        "let",
        "loop",
        "package",
        "namespace",
        "null",
        "return",
        "true",
        "var",
        "void",
        "while",
    }
)
"""CEL's reserved words and literals (the spec's list): never taken by the shortcut, even
where the CEL parser in use would accept one as a field name."""

_SCANNED = frozenset({"nodes", "params"})
"""Names the regular-expression scanners look for anywhere in the text."""
_IDENTIFIER_START = frozenset("_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_IDENTIFIER_REST = _IDENTIFIER_START | frozenset("0123456789")


class BarePath:
    """What validation needs of a bare dotted path, read from its text."""

    __slots__ = ("node_refs", "param_refs", "segments", "spellings")

    def __init__(self, segments: list[str]) -> None:
        self.segments = segments
        root, second = segments[0], segments[1] if len(segments) > 1 else None
        read = {second} if second is not None else set()
        nodes = root == "nodes"
        self.node_refs = frozenset(s.replace("_", "-") for s in read) if nodes else frozenset()
        self.spellings: tuple[tuple[str, str], ...] = ()
        if nodes and second is not None and "_" in second:
            self.spellings = ((second, second.replace("_", "-")),)
        self.param_refs = frozenset(read) if root == "params" else frozenset()

    @property
    def root(self) -> str:
        return self.segments[0]

    @property
    def dynamic_nodes(self) -> bool:
        """`nodes` alone reads every node, as the scanners count it."""
        return self.segments == ["nodes"]


def _identifier(word: str) -> bool:
    return (
        word != ""
        and word[0] in _IDENTIFIER_START
        and all(c in _IDENTIFIER_REST for c in word)
        and word not in CEL_RESERVED
    )


def bare_path(text: str, names: frozenset[str], max_length: int) -> BarePath | None:
    """The path `text` spells, if it is one the shortcut vouches for; else None (CEL
    decides, and words every error)."""
    if len(text) > max_length:
        return None
    segments = text.split(".")
    if segments[0] not in names or not all(_identifier(s) for s in segments):
        return None
    if any(s in _SCANNED for s in segments[1:]):
        return None
    return BarePath(segments)


class LazyProgram:
    """A CEL program compiled on its first evaluation: validation never evaluates."""

    __slots__ = ("_program", "_root", "source")

    def __init__(self, source: str, root: str) -> None:
        self.source = source
        self._root = root
        self._program: Any = None

    def variables(self) -> list[str]:
        """As CEL's `Program.variables()` reports a bare path: its root."""
        return [self._root]

    def execute(self, scope: Mapping[str, Any]) -> Any:
        program = self._program
        if program is None:
            from shoal.core.cel_runtime import cel

            program = self._program = cel.compile(self.source)
        return program.execute(scope)
