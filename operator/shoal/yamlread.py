"""Reading YAML the way `kubectl apply` does, and saying where the two readings differ.

kubectl (through sigs.k8s.io/yaml and go-yaml v2) reads YAML 1.1 scalars: `y`, `n`, `on`,
`off`, `yes`, `no` are booleans, `0755` is octal, `1_000` is a thousand, and a timestamp
stays a string. PyYAML reads them differently (`n` is a string, `2024-01-01` a date), and
editors and most other tools follow YAML 1.2, where all of these are strings or decimals.
So `shoal validate`/`run`/`submit` read every plain scalar as the API server will receive
it from kubectl, and report each one whose meaning YAML 1.2 would give differently, with its
line and column, so the user can quote it. What `shoal run` runs is then what `kubectl
apply` stores.

Positions of every key and list item are kept beside the documents (by container
identity), so a schema or compile error can name the line and column of its field.
"""

from __future__ import annotations

import math
import re

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from shoal.api.limits import MAX_DECODE_DEPTH
from shoal.core.lazy_re import LazyPattern
from shoal.yaml_aliases import check_aliases
from shoal_worker.records import Record

TYPE_CHECKING = False  # `typing` (and `dataclasses`) would cost `shoal validate`
if TYPE_CHECKING:
    from collections.abc import Hashable, Iterator
    from typing import Any

__all__ = ["Document", "Positions", "Surprise", "load_documents", "yaml_depth_problem"]

_PLAIN = "tag:shoal.dev,2026:plain"
"""The tag every untagged plain scalar gets, so it is resolved here rather than by PyYAML."""
_MERGE = "tag:yaml.org,2002:merge"
"""A plain `<<` key merges a mapping in (`<<: *defaults`), as go-yaml v2 and kubectl do."""

_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_NAN = frozenset({".nan", ".NaN", ".NAN"})
_INF = frozenset({".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})
_NEG_INF = frozenset({"-.inf", "-.Inf", "-.INF"})
_YAML12_BOOL = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_FLOAT_STYLE = LazyPattern(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_TIMESTAMP = LazyPattern(
    r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?$"
)
_GO_INT = LazyPattern(r"^[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$")
_INT64 = 1 << 63
_UINT64 = 1 << 64
_JSON_EXACT = 1e21
"""Go's encoding/json writes integral floats below this without an exponent."""


class Surprise(Record):
    """A plain scalar kubectl reads differently from YAML 1.2 (and from most editors)."""

    line: int
    column: int
    text: str
    value: Any
    is_key: bool

    @property
    def reading(self) -> str:
        """What kubectl makes of it, in words."""
        return _show(self.value)

    def describe(self, source: str) -> str:
        what = "key" if self.is_key else "value"
        return (
            f"{source}:{self.line}:{self.column}: warning: {what} {self.text} is read by "
            f"kubectl as {self.reading}; quote it ('{self.text}') if you mean the text"
        )


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"the number {value}"


class Positions:
    """Line and column (1-based) of each key and list item, by container identity."""

    __slots__ = ("_keep", "_marks")

    def __init__(self) -> None:
        self._marks: dict[tuple[int, Hashable], tuple[int, int]] = {}
        self._keep: dict[int, Any] = {}

    def add(self, container: Any, key: Hashable, node: Node) -> None:
        self._keep[id(container)] = container  # ids stay unique while the container lives
        mark = node.start_mark
        self._marks[(id(container), key)] = (mark.line + 1, mark.column + 1)

    def of(self, container: Any, key: Hashable) -> tuple[int, int] | None:
        return self._marks.get((id(container), key))

    def locate(self, root: Any, path: list[str | int]) -> tuple[int, int] | None:
        """The position of the deepest part of `path` that exists under `root`."""
        found: tuple[int, int] | None = None
        here = root
        for part in path:
            step = _child(here, part)
            if step is None:
                break
            found = self.of(here, step[0]) or found
            here = step[1]
        return found


def _child(container: Any, part: str | int) -> tuple[Hashable, Any] | None:
    """(key, value) of `part` in a mapping or list, accepting list indexes as text."""
    if isinstance(container, dict):
        return (part, container[part]) if part in container else None
    if isinstance(container, list):
        index = int(part) if isinstance(part, str) and part.isdigit() else part
        if isinstance(index, int) and 0 <= index < len(container):
            return index, container[index]
    return None


class Document:
    """One YAML document as kubectl would send it, with where its parts are."""

    __slots__ = ("positions", "raw", "surprises")

    def __init__(self, raw: Any, positions: Positions, surprises: list[Surprise]) -> None:
        self.raw = raw
        self.positions = positions
        self.surprises = surprises


def _go_int(text: str) -> int | None:
    """strconv.ParseInt/ParseUint(text, 0, 64) after underscores are dropped."""
    if not _GO_INT.match(text):
        return None
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    lower = body.lower()
    if lower.startswith(("0x", "0o", "0b")):
        value = int(body[2:], {"x": 16, "o": 8, "b": 2}[lower[1]])
    elif len(body) > 1 and body.startswith("0"):
        value = int(body[1:], 8)
    else:
        value = int(body)
    value *= sign
    if -_INT64 <= value < _UINT64:
        return value
    return None


def _number(value: float) -> int | float:
    """What the API server stores for a float: Go's JSON writes 8.0 as 8."""
    if math.isfinite(value) and value == int(value) and abs(value) < _JSON_EXACT:
        return int(value)
    return value


def go_scalar(text: str) -> Any:
    """The JSON value go-yaml v2 (kubectl) gives an untagged plain scalar."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _NULL:
        return None
    if text in _NAN or text in _INF or text in _NEG_INF:
        return text  # JSON has no NaN or infinity: kubectl refuses them; keep the text
    first = text[0]
    if first == ".":
        return _number(float(text)) if _FLOAT_STYLE.match(text) else text
    if first.isdigit() or first in "+-":
        if _TIMESTAMP.match(text):
            return text  # go-yaml v2 keeps timestamps as strings for interface{}
        plain = text.replace("_", "")
        as_int = _go_int(plain)
        if as_int is not None:
            return as_int
        if _FLOAT_STYLE.match(plain):
            return _number(float(plain))
    return text


def _yaml12(text: str) -> Any:
    """How YAML 1.2's core schema (editors, most tools) reads a plain scalar, roughly."""
    if text in _YAML12_BOOL:
        return text.lower() == "true"
    if text in _NULL:
        return None
    if text[0] not in "+-.0123456789":
        return text  # no number: spares compiling the patterns below (most scalars are words)
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"0o[0-7]+", text):
        return int(text[2:], 8)
    if re.fullmatch(r"0x[0-9a-fA-F]+", text):
        return int(text[2:], 16)
    if _FLOAT_STYLE.match(text):
        return _number(float(text))
    return text


def _json_key(key: Any) -> str:
    """sigs.k8s.io/yaml turns every mapping key into a JSON string."""
    if key is None:
        return "null"
    if isinstance(key, bool):
        return str(key).lower()
    if isinstance(key, str):
        return key
    return str(key)


class _KubectlReading:
    """Plain scalars resolved as go-yaml v2 resolves them, and positions kept: mixed into
    libyaml's loader (`_FastLoader`) and PyYAML's own (`_KubectlLoader`)."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)  # type: ignore[call-arg]
        self.name = source  # errors say the file, not "<unicode string>"
        self.positions = Positions()
        self.surprises: list[Surprise] = []

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return _MERGE if value == "<<" else _PLAIN
        return str(super().resolve(kind, value, implicit))  # type: ignore[misc]

    def construct_plain(self, node: ScalarNode, *, is_key: bool = False) -> Any:
        value = go_scalar(node.value)
        if value != _yaml12(node.value) or type(value) is not type(_yaml12(node.value)):
            mark = node.start_mark
            self.surprises.append(
                Surprise(mark.line + 1, mark.column + 1, node.value, value, is_key)
            )
        return value

    def fill_mapping(self, mapping: dict[str, Any], node: MappingNode) -> None:
        """Construct `node` into `mapping` itself, so positions name the final object."""
        if not isinstance(node, MappingNode):
            raise ConstructorError(
                None, None, f"expected a mapping node, but found {node.id}", node.start_mark
            )
        self.flatten_mapping(node)  # type: ignore[attr-defined]
        construct = self.construct_object  # type: ignore[attr-defined]
        for key_node, value_node in node.value:
            if key_node.tag == _PLAIN and isinstance(key_node, ScalarNode):
                key = _json_key(self.construct_plain(key_node, is_key=True))
            else:
                key = _json_key(construct(key_node))
            mapping[key] = construct(value_node)
            self.positions.add(mapping, key, key_node)

    def fill_sequence(self, items: list[Any], node: SequenceNode) -> None:
        if not isinstance(node, SequenceNode):
            raise ConstructorError(
                None, None, f"expected a sequence node, but found {node.id}", node.start_mark
            )
        construct = self.construct_object  # type: ignore[attr-defined]
        for index, child in enumerate(node.value):
            items.append(construct(child))
            self.positions.add(items, index, child)


class _KubectlLoader(_KubectlReading, yaml.SafeLoader):
    """PyYAML's own scanner and parser: its errors are the ones reported."""


_C_LOADER: Any = getattr(yaml, "CSafeLoader", None)


class _FastLoader(_KubectlReading, _C_LOADER or yaml.SafeLoader):  # type: ignore[misc]
    """libyaml's scanner and parser (where PyYAML has it), several times faster on a big
    manifest (a long inline `forEach`); on any error the text is read again by
    `_KubectlLoader`, so messages and limits read the same with or without libyaml."""


def _construct_plain(loader: Any, node: ScalarNode) -> Any:
    return loader.construct_plain(node)


def _construct_map(loader: Any, node: MappingNode) -> Iterator[dict[str, Any]]:
    data: dict[str, Any] = {}
    yield data
    loader.fill_mapping(data, node)


def _construct_seq(loader: Any, node: SequenceNode) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    loader.fill_sequence(data, node)


for _loader in (_KubectlLoader, _FastLoader):  # `loader: Any` above: either kind
    _loader.add_constructor(_PLAIN, _construct_plain)
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_documents(text: str, source: str) -> list[Document]:
    """Every non-empty document of `text`, read as kubectl reads it."""
    if _C_LOADER is not None:
        try:
            return _load(_FastLoader, text, source)
        except yaml.YAMLError:
            pass  # read again below, for PyYAML's message with this file's name
    return _load(_KubectlLoader, text, source)


def _load(kind: type[_KubectlLoader] | type[_FastLoader], text: str, source: str) -> list[Document]:
    loader = kind(text, source)
    try:
        docs: list[Any] = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # check_node said there is one
                break
            check_aliases(node)  # before anything expands them (yaml_aliases.py)
            doc = loader.construct_document(node)
            if doc is not None:
                docs.append(doc)
    finally:
        loader.dispose()
    return [Document(doc, loader.positions, loader.surprises) for doc in docs]


def yaml_depth_problem(text: str, limit: int = MAX_DECODE_DEPTH) -> str | None:
    """Why `text` nests too deep to load, or None.

    PyYAML builds documents recursively, so a 3,000-deep flow mapping raises
    RecursionError; its event parser is iterative, so the depth is measured on events first,
    by libyaml when PyYAML has it (several times faster than the Python scanner). When
    libyaml stops on an error (its own depth limit among them) the Python parser measures
    again, so errors and limits read the same with or without libyaml.
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return _depth_problem(text, limit, fast)
        except yaml.YAMLError:
            pass
    return _depth_problem(text, limit, yaml.SafeLoader)


def _depth_problem(text: str, limit: int, loader: Any) -> str | None:
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limit:
                return f"nests deeper than {limit} levels (limit {limit})"
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None
