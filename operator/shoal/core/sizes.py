"""How large a value is once JSON-encoded: the one measure every outputs cap uses.

The caps themselves live in `shoal.api.limits`; the status, the archive and the cron
`after` trigger compare against them through `json_size`, so a value is measured the
same way wherever it is bounded.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_size", "too_large_note"]


def json_size(value: Any) -> int:
    """UTF-8 bytes of `value` as compact JSON (non-JSON values as their `str`)."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


def too_large_note(size: int, place: str) -> str:
    """What stands in for outputs left out of `place` because they are too large."""
    return f"outputs of {size // 1024} KiB are too large for the {place}"
