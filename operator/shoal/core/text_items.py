"""`forEach` over text: a JSON list a step printed (Argo's `withParam` over a result).

A command's `outputs.result` (captured stdout) or a file output is a string; when a
`forEach` expression yields a string, it is read as a JSON list, bounded like any JSON a
manifest carries, so `forEach: "${{ nodes.gen.outputs.result }}"` works as in Argo.
"""

from __future__ import annotations

import json
from typing import Any

from shoal.api.limits import MAX_JSON_BYTES
from shoal.core.json_size import json_problem
from shoal.core.text import clip

__all__ = ["TextItemsError", "items_from_text"]


class TextItemsError(ValueError):
    """The text is not a JSON list within the bounds; the message says why."""


def items_from_text(text: str) -> list[Any]:
    """The JSON list `text` holds (surrounding whitespace allowed)."""
    if len(text) > MAX_JSON_BYTES:
        raise TextItemsError(f"text of {len(text)} characters (limit MAX_JSON_BYTES)")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise TextItemsError(f"text that is not a JSON list: {clip(text, 80)!r}") from None
    if not isinstance(value, list):
        raise TextItemsError(f"text holding a JSON {type(value).__name__}, not a list")
    problem = json_problem(value)
    if problem is not None:
        raise TextItemsError(f"a JSON list that {problem}")
    return value
