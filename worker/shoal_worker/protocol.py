"""The shoal stdout line protocol, version 2 (specified in docs/protocol.md).

A message is one stdout line: the marker ``@shoal/2:<token> `` at column 0, then one
JSON object. ``<token>`` is the attempt's secret (``$SHOAL_PROTOCOL_TOKEN``), which the
executor hands to the attempt out of band: data a job prints cannot know it, so printed
data can never pose as a result or an output. Every other line is a plain log line.
Pod logs are the transport, so parsing never raises: anything malformed becomes a
:class:`ProtocolViolation` that the consumer keeps as a log line, and nothing a job
prints is lost. The token itself never leaves the consumer: :func:`redact` strips it
from every line before the line is stored or shown.

This module is imported by the control plane as well as the worker; it uses the
standard library only.
"""

from __future__ import annotations

import json
import math
import os
import re

from .records import Record, field
from .termination import (
    TERMINATION_MESSAGE_LIMIT,
    TerminationMessage,
    parse_termination_message,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal, TypeAlias

    Level: TypeAlias = Literal["debug", "info", "warning", "error"]
    Status: TypeAlias = Literal["succeeded", "failed"]

__all__ = [
    "LEVELS",
    "MARKER",
    "PROTOCOL_VERSION",
    "TERMINATION_MESSAGE_LIMIT",
    "ErrorMessage",
    "LogMessage",
    "Message",
    "OutputMessage",
    "PlainLine",
    "ProgressMessage",
    "ProtocolViolation",
    "ResultMessage",
    "TerminationMessage",
    "encode",
    "new_token",
    "parse_display",
    "parse_line",
    "parse_termination_message",
    "redact",
    "strip_newline",
]

PROTOCOL_VERSION = 2
MARKER = "@shoal/2:"
"""A message starts with this, the attempt's token and one space."""
MARKER_PREFIX = "@shoal/"
REDACTED_MARKER = "@shoal/2 "
"""What a message's marker becomes once its token is stripped (stored and shown logs)."""
TOKEN_ENV = "SHOAL_PROTOCOL_TOKEN"
"""The environment variable that carries the attempt's token to the worker."""
REDACTED = "[token]"
V1_PROBLEM = (
    "protocol version 1 is no longer accepted: control lines need the attempt token "
    "(docs/protocol.md)"
)
TOKEN_PROBLEM = (
    "control line without this attempt's token: kept as log text (a printed record "
    "cannot be a message; docs/protocol.md)"
)
LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
STATUSES: tuple[str, ...] = ("succeeded", "failed")
RESERVED_TYPES: tuple[str, ...] = ("artifact",)

# Compiled on first use (re caches it): most streams never carry a `ts`.
_RFC3339 = r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
# json.dumps(ensure_ascii=False) leaves these raw, and str.splitlines() breaks on them.
_LINE_BREAK_ESCAPES = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


class LogMessage(Record):
    message: str
    level: Level = "info"
    fields: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None


class ProgressMessage(Record):
    percent: float | None = None
    message: str | None = None
    current: int | None = None
    total: int | None = None
    seq: int | None = None


class OutputMessage(Record):
    key: str
    value: Any
    seq: int | None = None


class ResultMessage(Record):
    status: Status
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    seq: int | None = None


class ErrorMessage(Record):
    message: str
    error_type: str | None = None
    traceback: str | None = None
    seq: int | None = None


class PlainLine(Record):
    """A line without the marker: an ordinary log line."""

    text: str


class ProtocolViolation(Record):
    """A line that tried to be a message and failed; ``problem`` says why."""

    text: str
    problem: str


Message = (
    LogMessage
    | ProgressMessage
    | OutputMessage
    | ResultMessage
    | ErrorMessage
    | PlainLine
    | ProtocolViolation
)


class _Invalid(Exception):
    """A field-level problem, turned into a ProtocolViolation by parse_line."""


# --- parsing -------------------------------------------------------------------------


def new_token() -> str:
    """A fresh attempt token: 128 random bits, hex (safe in env, shell and JSON).

    `os.urandom`, as `secrets.token_hex` reads it: importing `secrets` (with `random`,
    `hmac` and `hashlib`) would cost every `shoal run` a millisecond or two."""
    return os.urandom(16).hex()


def strip_newline(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    return line


def _scrub(line: str, token: str) -> str:
    return line.replace(token, REDACTED) if token and token in line else line


def redact(line: str, token: str) -> str:
    """``line`` as it may be stored or shown: a message's marker without its token, and
    the token replaced wherever else it appears (a job that echoed it, say)."""
    if token and line.startswith(MARKER + token + " "):
        line = REDACTED_MARKER + line[len(MARKER) + len(token) + 1 :]
    return _scrub(line, token)


def _token_matches(given: str, token: str) -> bool:
    if not token:  # a consumer without a token accepts no message at all
        return False
    from hmac import compare_digest  # on first use: hashlib's import costs every start-up

    return compare_digest(
        given.encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass")
    )


def parse_line(line: str, token: str) -> Message:
    """Parse one stdout line of the attempt whose token is ``token``. Never raises.

    One trailing ``\\n`` or ``\\r\\n`` is stripped. Only a line that carries ``token`` can
    be a message; any other line is plain text or a violation, and the text of what is
    returned never contains the token (see :func:`redact`).
    """
    line = strip_newline(line)
    if not line.startswith(MARKER_PREFIX):
        return PlainLine(_scrub(line, token))
    if not line.startswith(MARKER):
        return ProtocolViolation(_scrub(line, token), _marker_problem(line))
    given, sep, payload = line[len(MARKER) :].partition(" ")
    if not sep or not given:
        return ProtocolViolation(_scrub(line, token), _marker_problem(line))
    if not _token_matches(given, token):
        return ProtocolViolation(_scrub(line, token), TOKEN_PROBLEM)
    return _parse_payload(_scrub(REDACTED_MARKER + payload, token), payload)


def parse_display(line: str) -> Message:
    """Parse a line for people to read (``shoal logs``), whatever its token.

    Accepts a stored line (``@shoal/2 {...}``, token already stripped) and a live one
    with any token. For display only: it must never decide an outcome, since anyone can
    print a line that looks like this.
    """
    line = strip_newline(line)
    if line.startswith(REDACTED_MARKER):
        return _parse_payload(line, line[len(REDACTED_MARKER) :])
    if line.startswith(MARKER):
        given, sep, payload = line[len(MARKER) :].partition(" ")
        if sep and given:
            return _parse_payload(REDACTED_MARKER + payload, payload)
    return parse_line(line, "")


def _parse_payload(text: str, payload: str) -> Message:
    """Decode a message's JSON; ``text`` is the (redacted) line a violation keeps."""
    try:
        doc = json.loads(payload, parse_constant=_reject_constant)
    except ValueError as exc:
        return ProtocolViolation(text, f"invalid JSON: {exc}")
    except RecursionError:
        return ProtocolViolation(text, "invalid JSON: nested too deeply")
    if not isinstance(doc, dict):
        return ProtocolViolation(text, f"the payload must be a JSON object, got {_kind(doc)}")
    try:
        return _decode(doc)
    except _Invalid as exc:
        return ProtocolViolation(text, str(exc))


def _marker_problem(line: str) -> str:
    rest = line[len(MARKER_PREFIX) :]
    version = re.split("[ :]", rest, maxsplit=1)[0]
    if version == "1":
        return V1_PROBLEM
    if rest.startswith(f"{PROTOCOL_VERSION} "):
        return TOKEN_PROBLEM
    if version.isdigit() and version != str(PROTOCOL_VERSION):
        return (
            f"unsupported protocol version {version} "
            f"(this consumer speaks version {PROTOCOL_VERSION})"
        )
    return f"malformed marker: a message starts with '{MARKER}<token> ' and a JSON object"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _opt(doc: dict[str, Any], key: str, kinds: tuple[type, ...], expected: str) -> Any:
    """An optional field (absent or null means None) of one of ``kinds``."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise _Invalid(f"field '{key}' must be {expected}, got boolean")
    if not isinstance(value, kinds):
        raise _Invalid(f"field '{key}' must be {expected}, got {_kind(value)}")
    return value


def _req_str(doc: dict[str, Any], key: str, kind: str) -> str:
    if key not in doc:
        raise _Invalid(f"a {kind} message needs field '{key}'")
    value: str = _opt(doc, key, (str,), "a string")
    if value is None:
        raise _Invalid(f"field '{key}' must be a string, got null")
    return value


def _choice(doc: dict[str, Any], key: str, choices: tuple[str, ...], default: str | None) -> Any:
    value = _opt(doc, key, (str,), "a string")
    if value is None:
        if default is None:
            raise _Invalid(f"missing field '{key}' (one of {', '.join(choices)})")
        return default
    if value not in choices:
        raise _Invalid(f"field '{key}' must be one of {', '.join(choices)}, got {value!r}")
    return value


def _outputs(doc: dict[str, Any]) -> dict[str, Any]:
    outputs = _opt(doc, "outputs", (dict,), "an object")
    if outputs is None:
        return {}
    if "" in outputs:
        raise _Invalid("output keys must be non-empty strings")
    return dict(outputs)


def _decode(doc: dict[str, Any]) -> Message:
    kind = doc.get("type")
    if kind is None:
        raise _Invalid("missing field 'type'")
    if not isinstance(kind, str):
        raise _Invalid(f"field 'type' must be a string, got {_kind(kind)}")
    seq = _opt(doc, "seq", (int,), "an integer")
    ts = _opt(doc, "ts", (str,), "an RFC 3339 timestamp string")
    if ts is not None and not re.fullmatch(_RFC3339, ts, re.ASCII):
        raise _Invalid(f"field 'ts' must be an RFC 3339 timestamp, got {ts!r}")

    if kind == "log":
        return LogMessage(
            message=_req_str(doc, "message", kind),
            level=_choice(doc, "level", LEVELS, "info"),
            fields=dict(_opt(doc, "fields", (dict,), "an object") or {}),
            seq=seq,
        )
    if kind == "progress":
        percent = _opt(doc, "percent", (int, float), "a number")
        if percent is not None and not 0 <= percent <= 100:
            raise _Invalid(f"field 'percent' must be between 0 and 100, got {percent}")
        return ProgressMessage(
            percent=percent,
            message=_opt(doc, "message", (str,), "a string"),
            current=_opt(doc, "current", (int,), "an integer"),
            total=_opt(doc, "total", (int,), "an integer"),
            seq=seq,
        )
    if kind == "output":
        key = _req_str(doc, "key", kind)
        if not key:
            raise _Invalid("field 'key' must be a non-empty string")
        if "value" not in doc:
            raise _Invalid("an output message needs field 'value' (null is allowed)")
        return OutputMessage(key=key, value=doc["value"], seq=seq)
    if kind == "result":
        return ResultMessage(
            status=_choice(doc, "status", STATUSES, None),
            outputs=_outputs(doc),
            message=_opt(doc, "message", (str,), "a string"),
            seq=seq,
        )
    if kind == "error":
        return ErrorMessage(
            message=_req_str(doc, "message", kind),
            error_type=_opt(doc, "errorType", (str,), "a string"),
            traceback=_opt(doc, "traceback", (str,), "a string"),
            seq=seq,
        )
    if kind in RESERVED_TYPES:
        raise _Invalid(
            f"message type {kind!r} is reserved and not supported by protocol version "
            f"{PROTOCOL_VERSION} yet"
        )
    raise _Invalid(f"unknown message type {kind!r}")


# --- encoding ------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """Compact single-line JSON, as the protocol writes it. Raises TypeError/ValueError."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_LINE_BREAK_ESCAPES)


def encode(msg: Message, token: str) -> str:
    """One protocol line for ``msg`` carrying ``token``, without the newline; round-trips
    via ``parse_line(line, token)``.

    Plain lines and violations encode to their text. Raises TypeError/ValueError when a
    value is not JSON-serialisable (including NaN and infinities).
    """
    if isinstance(msg, PlainLine | ProtocolViolation):
        return msg.text
    doc: dict[str, Any]
    if isinstance(msg, LogMessage):
        doc = {"type": "log", "message": msg.message, "level": msg.level}
        if msg.fields:
            doc["fields"] = msg.fields
    elif isinstance(msg, ProgressMessage):
        doc = {"type": "progress"}
        for key in ("percent", "message", "current", "total"):
            value = getattr(msg, key)
            if value is not None:
                doc[key] = value
    elif isinstance(msg, OutputMessage):
        doc = {"type": "output", "key": msg.key, "value": msg.value}
    elif isinstance(msg, ResultMessage):
        doc = {"type": "result", "status": msg.status}
        if msg.outputs:
            doc["outputs"] = msg.outputs
        if msg.message is not None:
            doc["message"] = msg.message
    else:
        doc = {"type": "error", "message": msg.message}
        if msg.error_type is not None:
            doc["errorType"] = msg.error_type
        if msg.traceback is not None:
            doc["traceback"] = msg.traceback
    if msg.seq is not None:
        doc = {"type": doc.pop("type"), "seq": msg.seq, **doc}
    return MARKER + token + " " + dumps(doc)


def is_finite_number(value: object) -> bool:
    """True for int/float (not bool) that JSON can carry."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
