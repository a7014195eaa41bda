"""A pod log line as the API may show it: a protocol message without its attempt token.

Pods print `@shoal/2:<token> {...}`; the token is the attempt's secret, which the protocol
says never leaves the consumer (worker/shoal_worker/protocol.py). The server reads raw
pod logs, so it strips the token from each line before a response or an event carries
it, leaving the stored form `@shoal/2 {...}` that `shoal logs` and the dashboard render.
"""

from __future__ import annotations

from shoal_worker.protocol import MARKER, REDACTED_MARKER

__all__ = ["shown"]


def shown(line: str) -> str:
    """`line` without the token of a protocol message's marker."""
    if line.startswith(MARKER):
        given, sep, payload = line[len(MARKER) :].partition(" ")
        if sep and given:
            return REDACTED_MARKER + payload
        return REDACTED_MARKER.rstrip()
    return line
