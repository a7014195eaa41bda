"""The items of a `withSequence` fan-out: integers counted or ranged, optionally formatted.

Pure, so that validation (a constant sequence becomes a literal list) and the planner (a
sequence whose bounds are templates) agree on every item. The length is checked against
`MAX_FAN_OUT_ITEMS` before any item is made: `count: 10**12` must fail, not fill memory.
"""

from __future__ import annotations

from shoal.api.limits import MAX_FAN_OUT_ITEMS
from shoal.core.lazy_re import LazyPattern  # compiled on first use: start-up

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` (issue 17)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["SequenceError", "check_format", "sequence_items"]

_FORMAT = LazyPattern(r"^((?:[^%]|%%)*)%(0?)([0-9]{0,2})d((?:[^%]|%%)*)$")
_INTEGER = LazyPattern(r"^\s*[-+]?[0-9]{1,19}\s*$")


class SequenceError(ValueError):
    """A sequence that yields no valid items; the message starts with the field at fault."""


def check_format(fmt: str) -> None:
    """Raise SequenceError unless `fmt` holds exactly one `%d` (width and zero pad only)."""
    if _FORMAT.match(fmt) is None:
        raise SequenceError(
            f"format: {fmt!r} must hold one %d, with an optional zero pad and width "
            "below 100 (`%02d`); write %% for a literal %"
        )


def _integer(bounds: Mapping[str, Any], field: str, default: int | None) -> int | None:
    value = bounds.get(field)
    if value is None:
        return default
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise SequenceError(f"{field}: must be an integer, got {value!r}")


def _length(start: int, count: int | None, end: int | None) -> int:
    if count is not None and end is not None:
        raise SequenceError("count: set either count or end, not both")
    if count is not None:
        if count < 0:
            raise SequenceError(f"count: must not be negative, got {count}")
        return count
    if end is None:
        raise SequenceError("count: set count or end")
    return abs(end - start) + 1


def sequence_items(bounds: Mapping[str, Any]) -> list[int] | list[str]:
    """The items of a sequence given its evaluated `count`/`start`/`end`/`format`.

    Raises SequenceError naming the field when a bound is no integer, the format is not a
    plain `%d`, or the sequence yields more than `MAX_FAN_OUT_ITEMS` items.
    """
    fmt = bounds.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise SequenceError(f"format: must be a string, got {fmt!r}")
    if fmt is not None:
        check_format(fmt)
    start = _integer(bounds, "start", 0) or 0
    count = _integer(bounds, "count", None)
    end = _integer(bounds, "end", None)
    length = _length(start, count, end)
    if length > MAX_FAN_OUT_ITEMS:
        raise SequenceError(
            f"yields {length} items, above the limit of {MAX_FAN_OUT_ITEMS} "
            "(MAX_FAN_OUT_ITEMS, docs/security.md)"
        )
    step = -1 if end is not None and end < start else 1
    numbers = [start + step * i for i in range(length)]
    if fmt is None:
        return numbers
    return [fmt % n for n in numbers]
