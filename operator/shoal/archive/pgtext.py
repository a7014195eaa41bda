"""Text and JSON that PostgreSQL accepts, whatever a job or a manifest put in them.

PostgreSQL's `text` cannot hold NUL, and `jsonb` refuses the escape `\\u0000`; UTF-8
cannot hold lone surrogates. A run whose parameters held one NUL used to be refused on
every retry and never archived. Each is replaced by U+FFFD (the replacement character),
so the row is written and the reader sees where something was.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
# `\u0000` as JSON writes a NUL: preceded by an even number of backslashes (an odd number
# would make it the literal text `\u0000`, which is kept).
_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def pg_text(value: str) -> str:
    """`value` as PostgreSQL text: no NUL, no lone surrogate."""
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def pg_json(value: Any) -> str | None:
    """`value` as jsonb input text (compact; None stays None).

    Non-JSON values (datetimes, say) are written as their `str`; NUL in any string or
    key becomes U+FFFD. No recursion of ours: json's encoder walks the value.
    """
    if value is None:
        return None
    encoded = json.dumps(value, separators=(",", ":"), default=str)
    if "\\u0000" in encoded:
        encoded = _ESCAPED_NUL.sub(r"\1\\ufffd", encoded)
    return encoded
