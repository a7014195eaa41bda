"""Writing protocol lines to stdout safely next to whatever the job prints.

A protocol message only counts when its marker is at column 0. If job code printed a
partial line (or another thread was between ``print``'s text and its newline) a
message written straight to stdout would be glued onto that text and lost. So the
entrypoint swaps ``sys.stdout`` for a :class:`LineSafeWriter` that forwards only whole
lines, per thread, under the same lock the :class:`Emitter` holds.
"""

from __future__ import annotations

import io
import os
import threading

from .protocol import TOKEN_ENV, encode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

    from .protocol import Message

# A "line" that never ends (a progress bar redrawn with \r) is forwarded once it is
# this long, so memory stays bounded.
MAX_PARTIAL_LINE = 64 * 1024


class Emitter:
    """Numbers messages (``seq`` from 1) and writes each as one flushed line.

    Every line carries the attempt's token (``token``, else ``$SHOAL_PROTOCOL_TOKEN``):
    without it the control plane would take the line for plain log text.
    """

    def __init__(
        self, stream: TextIO, lock: threading.RLock | None = None, *, token: str | None = None
    ) -> None:
        self._stream = stream
        self._token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        self._lock = lock if lock is not None else threading.RLock()
        self._seq = 0
        self.broken = False

    @property
    def token(self) -> str:
        return self._token

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def emit(self, msg: Message) -> Message:
        """Write ``msg`` with the next ``seq``; raises TypeError/ValueError if unencodable.

        A closed or broken stdout (the reader went away) is not the job's failure: the
        message is dropped, ``broken`` is set, and the termination message still carries
        the result.
        """
        with self._lock:
            numbered = msg.replace(seq=self._seq + 1)
            line = encode(numbered, self._token)
            self._seq += 1
            if not self.broken:
                try:
                    self._stream.write(line + "\n")
                    self._stream.flush()
                except (OSError, ValueError):  # ValueError: I/O on a closed file
                    self.broken = True
            return numbered


class LineSafeWriter(io.TextIOBase):
    """A ``sys.stdout`` stand-in that forwards whole lines only.

    Each thread's unfinished line waits in its own buffer until its newline arrives (or
    :meth:`drain` at the end), so the underlying stream is always at column 0 between
    writes, which is where the Emitter's lines must start.
    """

    def __init__(self, target: TextIO, lock: threading.RLock) -> None:
        super().__init__()
        self._target = target
        self._lock = lock
        self._pending: dict[int, str] = {}

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        ident = threading.get_ident()
        with self._lock:
            pending = self._pending.pop(ident, "") + text
            cut = pending.rfind("\n") + 1
            if cut:
                self._target.write(pending[:cut])
            rest = pending[cut:]
            if len(rest) >= MAX_PARTIAL_LINE:
                self._target.write(rest + "\n")
                rest = ""
            if rest:
                self._pending[ident] = rest
            if cut or not rest:
                self._target.flush()
        return len(text)

    def drain(self) -> None:
        """Forward every thread's unfinished line, each ended with a newline."""
        with self._lock:
            for rest in self._pending.values():
                self._target.write(rest + "\n")
            self._pending.clear()
            self._target.flush()

    def flush(self) -> None:
        with self._lock:
            self._target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._target.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._target.errors

    def __getattr__(self, name: str) -> Any:
        # `buffer`, `mode`, `line_buffering`... whatever else code expects of stdout.
        return getattr(self._target, name)
