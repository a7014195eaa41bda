"""One worker attempt's stdout, plus its exit, turned into an `Outcome`.

Only the control plane consumes a stream (the operator's pod-log follower and the local
executor's process reader), so the collector lives here rather than in the worker SDK;
the line format itself (`shoal_worker.protocol`) is shared. Pure: no I/O.
"""

from __future__ import annotations

import signal
from collections import deque
from typing import Any

from shoal.api.limits import MAX_RESULT_BYTES
from shoal.core.text import clip
from shoal_worker.protocol import (
    ErrorMessage,
    LogMessage,
    Message,
    OutputMessage,
    PlainLine,
    ProgressMessage,
    ProtocolViolation,
    ResultMessage,
    parse_line,
    redact,
    strip_newline,
)
from shoal_worker.records import Record
from shoal_worker.termination import parse_termination_message

__all__ = ["Outcome", "StreamCollector"]


class Outcome(Record):
    """What a finished worker amounts to, for the control plane."""

    succeeded: bool
    exit_code: int | None
    outputs: dict[str, Any]
    message: str
    outputs_complete: bool = True
    """False when the termination message dropped outputs the stream did not deliver."""
    missing_outputs: tuple[str, ...] = ()
    """Output keys named by a truncated termination message but absent from the stream."""


class StreamCollector:
    """Accumulates one worker's stdout and turns it, plus its exit, into an Outcome.

    Feed every line in order. Memory stays bounded except for outputs: the collector
    keeps the last ``tail_lines`` log lines (each cut to ``max_line_chars``) and the
    last ``tail_lines`` errors for failure messages, and counts violations instead of
    storing them.
    """

    def __init__(
        self,
        token: str,
        tail_lines: int = 20,
        *,
        max_line_chars: int = 500,
        capture_stdout: bool = False,
        max_result_bytes: int = MAX_RESULT_BYTES,
    ) -> None:
        self.token = token
        """The attempt's token: only lines that carry it are messages."""
        self._stream_outputs: dict[str, Any] = {}
        self._result: ResultMessage | None = None
        self._progress: ProgressMessage | None = None
        self._errors: deque[ErrorMessage] = deque(maxlen=max(tail_lines, 1))
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._max_line_chars = max_line_chars
        self.violations = 0
        self.lines = 0
        self._capture = _Capture(max_result_bytes) if capture_stdout else None

    def feed(self, line: str, *, stdout: bool = True) -> Message:
        """Parse ``line``, accumulate it and return what it was.

        A second ``result`` is returned as a ProtocolViolation: the first one stands.
        ``stdout=False`` (a line the transport knows came from stderr) keeps the line out
        of a captured stdout.
        """
        self.lines += 1
        msg = parse_line(line, self.token)
        if isinstance(msg, ResultMessage) and self._result is not None:
            msg = ProtocolViolation(
                self.redact(strip_newline(line)),
                "duplicate result message: the first result stands",
            )
        if isinstance(msg, OutputMessage):
            self._stream_outputs[msg.key] = msg.value
        elif isinstance(msg, ResultMessage):
            self._result = msg
        elif isinstance(msg, ProgressMessage):
            self._progress = msg
        elif isinstance(msg, ErrorMessage):
            self._errors.append(msg)
        elif isinstance(msg, LogMessage):
            text = msg.message if msg.level == "info" else f"{msg.level.upper()}: {msg.message}"
            self._remember(text)
        elif isinstance(msg, PlainLine):
            self._remember(msg.text)
            if stdout and self._capture is not None:
                self._capture.add(msg.text)
        else:
            self.violations += 1
            self._remember(msg.text)
        return msg

    def violation(self, text: str, problem: str) -> ProtocolViolation:
        """Count a violation the transport found (a line cut at its length limit)."""
        self.lines += 1
        self.violations += 1
        if self._capture is not None:
            self._capture.cut = True  # a cut line cannot be captured whole
        msg = ProtocolViolation(self.redact(text), problem)
        self._remember(msg.text)
        return msg

    def redact(self, line: str) -> str:
        """``line`` without this attempt's token: what may be stored or shown."""
        return redact(line, self.token)

    def _remember(self, text: str) -> None:
        if text.strip():
            self._tail.append(clip(self.redact(text), self._max_line_chars, marker="..."))

    @property
    def outputs(self) -> dict[str, Any]:
        """Outputs seen on the stream: ``output`` messages, then ``result.outputs``."""
        merged = dict(self._stream_outputs)
        if self._result is not None:
            merged.update(self._result.outputs)
        return merged

    @property
    def result(self) -> ResultMessage | None:
        return self._result

    @property
    def progress(self) -> ProgressMessage | None:
        return self._progress

    @property
    def errors(self) -> list[ErrorMessage]:
        """The last ``error`` messages (oldest first)."""
        return list(self._errors)

    def tail(self) -> list[str]:
        """The last log and plain lines (oldest first)."""
        return list(self._tail)

    def finish(
        self,
        exit_code: int | None,
        termination_message: str | None,
        *,
        killed_reason: str | None = None,
    ) -> Outcome:
        """Decide the outcome once the process has ended.

        ``exit_code`` decides success (None: unknown, the result decides);
        ``killed_reason`` (deadline, eviction, OOM...) always means failure. The stream's
        result wins over the termination message, which fills in when the stream has
        none, so a broken log stream does not lose a result.
        """
        term = (
            parse_termination_message(termination_message, self.token)
            if termination_message
            else None
        )
        stream_outputs = self.outputs
        result_status: str | None = None
        result_message = ""
        if self._result is not None:
            result_status = self._result.status
            result_message = self._result.message or ""
        elif term is not None:
            result_status = term.status
            result_message = term.message

        outputs = stream_outputs
        missing: tuple[str, ...] = ()
        keys_unknown = False
        if self._result is None and term is not None:
            outputs = {**stream_outputs, **term.outputs}
            if term.outputs_truncated:
                missing = tuple(key for key in term.output_keys if key not in outputs)
                keys_unknown = term.output_keys_truncated
        complete = not missing and not keys_unknown
        capture_problem = None
        if self._capture is not None:
            capture_problem = self._capture.problem()
            if capture_problem is None:
                # An explicit `result` output of the protocol wins over the implicit one.
                outputs = {"result": self._capture.text(), **outputs}

        if killed_reason is not None:
            succeeded = False
        elif exit_code is None:
            succeeded = result_status == "succeeded"
        else:
            succeeded = exit_code == 0 and result_status != "failed"

        notes: list[str] = []
        if capture_problem is not None:
            if succeeded:
                result_message = capture_problem
                result_status = "failed"
            succeeded = False
        if not complete:
            notes.append(_incomplete_note(missing, keys_unknown))
        if succeeded:
            message = "\n".join([result_message, *notes]).strip()
            return Outcome(True, exit_code, outputs, self.redact(message), complete, missing)

        headline = self._headline(exit_code, result_status, result_message, killed_reason)
        lines = [headline, *notes]
        tail = self.tail()
        if tail:
            lines.append("last log lines:")
            lines.extend(f"  {text}" for text in tail)
        elif termination_message and term is None and termination_message.strip():
            lines.append("termination message:")
            lines.append(f"  {clip(self.redact(termination_message.strip()), 2000, marker='...')}")
        message = self.redact("\n".join(lines))  # a job's own error text may hold it too
        return Outcome(False, exit_code, outputs, message, complete, missing)

    def _headline(
        self,
        exit_code: int | None,
        result_status: str | None,
        result_message: str,
        killed_reason: str | None,
    ) -> str:
        """A failure's first line: why (kill, reported failure, last error) and the exit."""
        reasons = [killed_reason] if killed_reason else []
        if result_status == "failed" and result_message:
            reasons.append(result_message)
        elif self._errors:
            last = self._errors[-1]
            reasons.append(
                f"{last.error_type}: {last.message}" if last.error_type else last.message
            )
        elif exit_code is None and result_status is None:
            reasons.append("no result was reported")
        reason = clip("; ".join(r for r in reasons if r), 2000, marker="...")
        status = _describe_exit(exit_code)
        if reason:
            return f"{reason} ({status})"
        if exit_code == 0 and result_status == "failed":
            return f"the job reported failure ({status})"
        return status[0].upper() + status[1:]


class _Capture:
    """A command's plain stdout lines, kept whole up to a byte bound (`captureStdout`)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.lines: list[str] = []
        self.size = 0
        self.overflowed = False
        self.cut = False

    def add(self, text: str) -> None:
        """Keep ``text`` (one line without its newline) unless the bound is passed."""
        if self.overflowed:
            return
        self.size += len(text.encode("utf-8")) + (1 if self.lines else 0)
        if self.size > self.max_bytes:
            self.overflowed = True
            self.lines.clear()  # nothing of it is used: free it now
        else:
            self.lines.append(text)

    def text(self) -> str:
        """Stdout as one string, less one trailing newline (the line split took it)."""
        return "\n".join(self.lines)

    def problem(self) -> str | None:
        if self.overflowed:
            return (
                f"captured stdout is longer than {self.max_bytes} bytes, the limit "
                "MAX_RESULT_BYTES of outputs.result"
            )
        if self.cut:
            return "captured stdout has a line too long to read whole, so no outputs.result"
        return None


def _incomplete_note(missing: tuple[str, ...], keys_unknown: bool) -> str:
    note = "outputs incomplete: the termination message was truncated"
    if missing:
        shown = ", ".join(repr(key) for key in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        note += f" and the log stream did not deliver {shown}{more}"
    if keys_unknown:
        note += "; its list of output keys was truncated too, so some may be missing"
    return note


def _describe_exit(exit_code: int | None) -> str:
    if exit_code is None:
        return "exit code unknown"

    def name(number: int) -> str | None:
        try:
            return signal.Signals(number).name
        except ValueError:
            return None

    if exit_code < 0:
        return f"killed by signal {name(-exit_code) or -exit_code}"
    if exit_code > 128 and (signame := name(exit_code - 128)):
        return f"exit code {exit_code}, {signame}"
    return f"exit code {exit_code}"
