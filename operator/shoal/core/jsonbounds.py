"""Size and depth of user JSON, measured without recursion.

User JSON (`args`, `parameters`, a literal `forEach`, watch events, HTTP bodies) can nest
deeper than Python's recursion limit. Everything here walks it with an explicit stack, so
hostile input yields a message instead of a `RecursionError` that would end the process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from shoal.api.limits import MAX_DECODE_DEPTH, MAX_JSON_ELEMENTS
from shoal.core.json_size import CUT_LARGE, json_problem

__all__ = [
    "CUT",
    "CUT_FROM_DEPTH",
    "CUT_LARGE",
    "cut_deep",
    "json_problem",
    "loads",
    "loads_bounded",
    "rebuild",
]

CUT = f"<cut: nested deeper than {MAX_DECODE_DEPTH} levels>"
"""What `loads_bounded` puts where JSON nested too deep was."""
CUT_FROM_DEPTH = 3
"""Containers this deep or deeper are cut when too large; shallower ones (an object, a
list response's `items`) are the API server's, not a user's."""


def loads(text: str | bytes | bytearray, *, max_depth: int = MAX_DECODE_DEPTH) -> Any:
    """`json.loads`, except that nesting deeper than `max_depth` is replaced by `CUT`.

    The C decoder handles every ordinary document; only when it gives up with
    RecursionError does the iterative decoder below run.
    """
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    try:
        value = json.loads(text)
    except RecursionError:
        value = loads_bounded(text, max_depth=max_depth)
    # The C decoder manages ~1,000 levels, but kopf deep-copies every object it sees
    # (two frames per level), so what it returns is cut to the same depth.
    return cut_deep(value, max_depth)


def cut_deep(
    value: Any, max_depth: int = MAX_DECODE_DEPTH, max_members: int = MAX_JSON_ELEMENTS
) -> Any:
    """`value` with every object or list nested deeper than `max_depth` replaced by CUT,
    and every one from CUT_FROM_DEPTH down with more than `max_members` members by
    CUT_LARGE (validation refuses both, naming the limit).

    Changes `value` in place (it is freshly decoded); iterative, linear in its size.
    """
    if not isinstance(value, dict | list):
        return value
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        slots = container.items() if isinstance(container, dict) else enumerate(container)
        for slot, member in list(slots):
            if not isinstance(member, dict | list):
                continue
            if depth >= max_depth:
                container[slot] = CUT
            elif depth + 1 >= CUT_FROM_DEPTH and len(member) > max_members:
                container[slot] = CUT_LARGE
            else:
                stack.append((member, depth + 1))
    return value


_WS = re.compile(r"[ \t\n\r]*")
_SKIP = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_DECODER = json.JSONDecoder()
# The C string scanner json itself uses (typeshed does not list it).
scanstring: Callable[[str, int], tuple[str, int]] = getattr(json.decoder, "scanstring")  # noqa: B009


def _skip(text: str, pos: int) -> int:
    """Index just past the object or list that starts at `pos`."""
    depth = 0
    for match in _SKIP.finditer(text, pos):
        token = match.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            depth -= 1
            if depth == 0:
                return match.end()
    raise ValueError("unterminated JSON container")


def _key(text: str, pos: int) -> tuple[str, int]:
    """An object key and the position after its `:`."""
    if text[pos] != '"':
        raise ValueError(f"expected a key at {pos}")
    key, pos = scanstring(text, pos + 1)
    pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
    if text[pos] != ":":
        raise ValueError(f"expected ':' at {pos}")
    return key, _WS.match(text, pos + 1).end()  # type: ignore[union-attr]


def loads_bounded(text: str, *, max_depth: int = MAX_DECODE_DEPTH) -> Any:
    """Decode JSON with an explicit stack; containers deeper than `max_depth` become `CUT`."""
    stack: list[list[Any] | dict[str, Any]] = []
    keys: list[str] = []
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    while True:
        char = text[pos]
        value: Any
        if char in "[{" and len(stack) >= max_depth:
            value, pos = CUT, _skip(text, pos)
        elif char in "[{":
            container: list[Any] | dict[str, Any] = [] if char == "[" else {}
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
            if text[pos] not in "]}":
                stack.append(container)
                if isinstance(container, dict):
                    key, pos = _key(text, pos)
                    keys.append(key)
                continue
            value, pos = container, pos + 1
        else:
            value, pos = _DECODER.raw_decode(text, pos)
        while True:  # attach the finished value; close every container it completes
            if not stack:
                if _WS.match(text, pos).end() != len(text):  # type: ignore[union-attr]
                    raise ValueError(f"extra data at {pos}")
                return value
            top = stack[-1]
            if isinstance(top, dict):
                top[keys.pop()] = value
            else:
                top.append(value)
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            char = text[pos]
            if char == ",":
                pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
                if isinstance(top, dict):
                    key, pos = _key(text, pos)
                    keys.append(key)
                break
            if char not in "]}":
                raise ValueError(f"expected ',' or a closing bracket at {pos}")
            value, pos = stack.pop(), pos + 1


def rebuild(value: Any, text: Callable[[str], str] = str, *, drop_none: bool = False) -> Any:
    """A copy of a JSON value with `text` applied to every string (keys too), without recursion.

    `drop_none` leaves out object members whose value is None (what a merge patch stores).
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, slot = stack.pop()
        if isinstance(item, dict):
            out: dict[Any, Any] = {}
            for key, member in item.items():
                if drop_none and member is None:
                    continue
                new_key = text(key) if isinstance(key, str) else key
                out[new_key] = None  # keeps the members' order
                stack.append((member, out, new_key))
            parent[slot] = out
        elif isinstance(item, list):
            items: list[Any] = [None] * len(item)
            stack.extend((member, items, i) for i, member in enumerate(item))
            parent[slot] = items
        else:
            parent[slot] = text(item) if isinstance(item, str) else item
    return root[0]
