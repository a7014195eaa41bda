"""What `kube/api.KubeApi` needs of an HTTP client, so the client can be swapped.

The operator talks to the API server through aiohttp (`kube/aio_transport.py`): its C
parser made a request about a fifth of httpx's CPU and a streamed line a sixth
(docs/operator.md). The REST API's per-caller pool stays on httpx
(`kube/httpx_transport.py`). Both raise `Unreachable` for anything that is not an HTTP
answer (no connection, a reset, a read timeout), which `KubeApi` turns into
`ApiError(0, "Unreachable")`, so callers catch one error whatever the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Answer", "Streamed", "Transport", "Unreachable", "query"]


class Unreachable(Exception):
    """The request got no complete answer: connecting, sending or reading failed."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: status, reason phrase, `Retry-After` (if any) and body."""

    status: int
    reason: str
    body: bytes
    retry_after: str | None = None


class Streamed(Protocol):
    """An answer whose body is read as it arrives."""

    @property
    def status(self) -> int: ...

    async def answer(self) -> Answer:
        """The rest of the body, read whole (an error's)."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive; `Unreachable` when the connection fails."""
        ...


class Transport(Protocol):
    """One connection pool with its timeouts."""

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        headers: dict[str, str],
        content: bytes | None,
    ) -> Answer: ...

    def stream(
        self, path: str, *, params: Mapping[str, Any] | None, headers: dict[str, str]
    ) -> AbstractAsyncContextManager[Streamed]:
        """A GET whose body is streamed."""
        ...

    async def aclose(self) -> None: ...


def query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Query parameters as strings, booleans spelled as the API server reads them."""
    if not params:
        return None
    return {
        key: "true" if value is True else "false" if value is False else str(value)
        for key, value in params.items()
        if value is not None
    }
