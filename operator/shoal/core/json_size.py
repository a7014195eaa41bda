"""Whether user JSON is within the size and depth limits, measured without recursion.

Apart from `core/jsonbounds.py` (which re-exports it) because the validator needs only
this check, and that module's decoder would bring `json` and its patterns to every
`shoal validate` (issue 17).
"""

from __future__ import annotations

from shoal.api.limits import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_ELEMENTS

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` (issue 17)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["CUT_LARGE", "json_problem"]

CUT_LARGE = f"<cut: more than {MAX_JSON_ELEMENTS} values>"
"""What the operator's decoder puts where one object or list had more members than any
field may hold: such a value would be refused anyway, and held whole (kopf's body, the
runner's copy, the watch's last event) it cost tens of MiB that were never returned."""


def json_problem(
    value: Any,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_elements: int = MAX_JSON_ELEMENTS,
    max_bytes: int = MAX_JSON_BYTES,
) -> str | None:
    """Why `value` is too deep or too large (naming the limit), or None when it is within."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    elements = 0
    size = 0
    while stack:
        item, depth = stack.pop()
        elements += 1
        if elements > max_elements:
            return f"has more than {max_elements} values (limit {max_elements})"
        if isinstance(item, dict | list):
            if depth + 1 > max_depth:
                return f"nests deeper than {max_depth} levels (limit {max_depth})"
            if isinstance(item, dict):
                size += sum(len(str(k)) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            if item == CUT_LARGE:  # the decoder's marker: the value had too many members
                return f"has more than {max_elements} values (limit {max_elements})"
            size += len(item)
        if size > max_bytes:
            return f"holds more than {max_bytes} characters of text (limit {max_bytes})"
    return None
