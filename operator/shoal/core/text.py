"""Text cut to a bound, one way everywhere (status messages, failure summaries)."""

from __future__ import annotations

__all__ = ["clip"]


def clip(text: str, limit: int, *, marker: str = "…") -> str:
    """`text` if it fits in `limit` characters, else its start plus `marker`, `limit` long."""
    return text if len(text) <= limit else text[: limit - len(marker)] + marker
