"""The termination message: the worker's result, written to a file Kubernetes keeps.

Kubernetes copies the file named by the container's ``terminationMessagePath`` into the
pod status when the container ends. That is the second path a result takes to the
control plane, so a broken log stream does not lose it. Kubernetes caps the message at
4096 bytes, so :func:`build_termination_message` degrades explicitly (drop outputs, list
their keys, then shorten) instead of letting the kubelet cut the JSON in half.
"""

from __future__ import annotations

import json
import sys

from .records import Record, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TERMINATION_MESSAGE_LIMIT = 4096
"""Bytes Kubernetes keeps of a container's termination message."""

TERMINATION_MESSAGE_VERSION = 2
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
TRUNCATION_SUFFIX = " ...[truncated]"

# When the output keys do not fit beside the message, the message keeps at least this
# many bytes: a failed job's reason matters more than the names of its outputs.
_MESSAGE_RESERVE = 1024


class TerminationMessage(Record):
    """A parsed termination message."""

    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    outputs_truncated: bool = False
    output_keys: list[str] = field(default_factory=list)
    output_keys_truncated: bool = False
    """True when even the list of output keys did not fit: completeness is unknowable."""


def _encode(doc: dict[str, Any]) -> bytes:
    # backslashreplace turns a lone surrogate into a JSON escape, which still parses.
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8", "backslashreplace")


def _fit_message(doc: dict[str, Any], message: str, limit: int) -> dict[str, Any] | None:
    """``doc`` plus the longest prefix of ``message`` that fits, or None if nothing fits."""
    whole = {**doc, "message": message}
    if len(_encode(whole)) <= limit:
        return whole
    if len(_encode({**doc, "message": ""})) > limit:
        return None
    # Each character costs at least one byte, so no prefix longer than `limit` fits.
    lo, hi = 0, min(len(message), limit)
    best: str | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = message[:mid] + TRUNCATION_SUFFIX
        if len(_encode({**doc, "message": candidate})) <= limit:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return {**doc, "message": best if best is not None else ""}


def build_termination_message(
    status: str,
    outputs: dict[str, Any],
    message: str = "",
    *,
    token: str,
    limit: int = TERMINATION_MESSAGE_LIMIT,
) -> bytes:
    """Encode a termination message that is at most ``limit`` bytes of UTF-8.

    If everything fits it is
    ``{"v":2,"token":..,"status":..,"outputs":{..},"message":..}``: the attempt's
    ``token`` proves it was written by whoever holds it, not forged from printed data.
    Otherwise ``outputs`` is replaced by ``"outputsTruncated":true`` and
    ``"outputKeys":[..]`` (the stream carries the values), and ``message`` is shortened
    to fit. If even the keys do not fit beside a 1 KiB message, only the leading keys
    that fit are listed and ``"outputKeysTruncated":true`` is set.
    Raises TypeError/ValueError if ``outputs`` is not JSON-serialisable.
    """
    base: dict[str, Any] = {"v": TERMINATION_MESSAGE_VERSION, "token": token, "status": status}
    encoded = _encode({**base, "outputs": outputs, "message": message})
    if len(encoded) <= limit:
        return encoded
    if not outputs:
        return _encode(_must_fit({**base, "outputs": {}}, message, limit))

    keys = list(outputs)
    dropped = {**base, "outputsTruncated": True, "outputKeys": keys}
    fitted = _fit_message(dropped, message, limit)
    if fitted is not None and len(fitted["message"]) >= min(len(message), _MESSAGE_RESERVE):
        return _encode(fitted)

    # The keys crowd out the message: keep a short message, then as many keys as fit.
    short = _fit_message(base, message, len(_encode(base)) + _MESSAGE_RESERVE)
    short_message = short["message"] if short is not None else ""
    lo, hi, count = 0, len(keys), 0
    while lo <= hi:
        mid = (lo + hi) // 2
        doc = {**dropped, "outputKeys": keys[:mid], "outputKeysTruncated": True}
        if len(_encode({**doc, "message": short_message})) <= limit:
            count, lo = mid, mid + 1
        else:
            hi = mid - 1
    doc = {**dropped, "outputKeys": keys[:count], "outputKeysTruncated": True}
    return _encode(_must_fit(doc, message, limit))


def _must_fit(doc: dict[str, Any], message: str, limit: int) -> dict[str, Any]:
    fitted = _fit_message(doc, message, limit)
    if fitted is None:
        raise ValueError(f"termination message limit {limit} is too small")
    return fitted


def parse_termination_message(text: str, token: str) -> TerminationMessage | None:
    """Parse what the worker wrote; None if ``text`` is not a v2 termination message
    carrying ``token``, the attempt's token.

    None is normal for containers that are not shoal workers (or that died before
    writing): Kubernetes may then hold plain text or the tail of the log there.
    """
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    version = doc.get("v")
    if type(version) is not int or version != TERMINATION_MESSAGE_VERSION:
        return None
    given = doc.get("token")
    if not token or not isinstance(given, str):
        return None
    from hmac import compare_digest  # on first use: hashlib's import costs every start-up

    if not compare_digest(
        given.encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass")
    ):
        return None
    status = doc.get("status")
    outputs = doc.get("outputs", {})
    message = doc.get("message", "")
    truncated = doc.get("outputsTruncated", False)
    keys = doc.get("outputKeys", [])
    keys_truncated = doc.get("outputKeysTruncated", False)
    if (
        status not in ("succeeded", "failed")
        or not isinstance(outputs, dict)
        or not isinstance(message, str)
        or not isinstance(truncated, bool)
        or not isinstance(keys_truncated, bool)
        or not isinstance(keys, list)
        or not all(isinstance(key, str) for key in keys)
    ):
        return None
    return TerminationMessage(
        status=status,
        outputs=outputs,
        message=message,
        outputs_truncated=truncated,
        output_keys=keys,
        output_keys_truncated=keys_truncated,
    )


def write_termination_message(path: str, data: bytes) -> bool:
    """Write ``data`` to ``path``; on failure warn on stderr and carry on (returns False).

    Outside Kubernetes the default path usually does not exist; the stdout result is
    still there, so a missing file must never fail the job.
    """
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"shoal-worker: warning: cannot write the termination message to {path}: {reason}",
            file=sys.stderr,
            flush=True,
        )
        return False
    return True
