"""RFC 3339 times, read and written one way everywhere.

Kubernetes stamps objects in UTC with a `Z` suffix; Shoal's status, the archive and the
CLI do the same (with microseconds where a value must round-trip exactly). Every
reader gets an aware datetime, so comparisons never mix naive and aware values.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_rfc3339", "parse_rfc3339"]

_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_MICROSECONDS = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_rfc3339(value: object) -> datetime | None:
    """An RFC 3339 (or ISO 8601) time as an aware datetime; None for an empty value.

    A time without an offset is taken as UTC. Raises ValueError when malformed.
    """
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_rfc3339(value: datetime | float, *, fraction: bool = False) -> str:
    """`value` (a datetime, or seconds since the epoch) in UTC with a `Z` suffix;
    `fraction` keeps microseconds, for times that must round-trip exactly."""
    when = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
    return when.astimezone(UTC).strftime(_MICROSECONDS if fraction else _SECONDS)
