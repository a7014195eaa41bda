"""``Context``: what a job function gets to talk to the control plane.

Everything goes out as protocol lines on stdout (see docs/protocol.md). The context also
remembers the outputs it sent, because the entrypoint repeats them in the final
``result`` message and in the termination message.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time

from .emit import Emitter
from .errors import JobFailed, OutputError
from .protocol import (
    LEVELS,
    LogMessage,
    OutputMessage,
    ProgressMessage,
    dumps,
    is_finite_number,
)
from .refs import OUTPUT_KEY_PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path
    from typing import Any, BinaryIO, NoReturn, TextIO, overload

    from .artifacts import ArtifactRef, ArtifactStore

PROGRESS_INTERVAL = 0.1
"""Seconds between progress messages: at most ~10 per second reach the stream."""
_ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_=-][A-Za-z0-9._=-]*")


class Context:
    """The job's handle on the run: logging, progress, outputs, failure, metadata.

    Thread-safe. In unit tests of a job, build one directly:
    ``Context({"region": "eu"}, stream=io.StringIO(), env={})``.
    """

    def __init__(
        self,
        args: Mapping[str, Any] | None = None,
        *,
        stream: TextIO | None = None,
        emitter: Emitter | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress_interval: float = PROGRESS_INTERVAL,
        offload: Callable[[str, Any], Any] | None = None,
        artifact_store: ArtifactStore | Callable[[], ArtifactStore] | None = None,
    ) -> None:
        self._offload = offload
        """Replaces a large output by an artifact reference (shoal_worker.offload)."""
        self._emitter = emitter or Emitter(stream if stream is not None else sys.stdout)
        self._args = dict(args or {})
        env = os.environ if env is None else env
        self.workflow: str | None = env.get("SHOAL_WORKFLOW") or None
        self.workflow_uid: str | None = env.get("SHOAL_WORKFLOW_UID") or None
        self.namespace: str | None = env.get("SHOAL_NAMESPACE") or None
        self.node: str | None = env.get("SHOAL_NODE") or None
        self.item_index: int | None = _env_int(env, "SHOAL_ITEM_INDEX", None)
        self.attempt: int = _env_int(env, "SHOAL_ATTEMPT", 1) or 1
        self._outputs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._interval = progress_interval
        self._last_progress_at: float | None = None
        self._pending_progress: ProgressMessage | None = None
        self._env = env
        # A store, or a function that opens one on first use (the entrypoint passes the
        # one it resolves arguments and offloads outputs with: one client per pod).
        self._store = None if callable(artifact_store) else artifact_store
        self._store_factory = artifact_store if callable(artifact_store) else None
        self._store_lock = threading.Lock()

    @property
    def args(self) -> dict[str, Any]:
        """The job's arguments (a copy)."""
        return dict(self._args)

    @property
    def outputs(self) -> dict[str, Any]:
        """Outputs set so far (a copy, as JSON would carry them)."""
        with self._lock:
            return dict(self._outputs)

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        """A structured log line; ``fields`` that JSON cannot carry are sent as repr()."""
        if level not in LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
        msg = LogMessage(str(message), level, fields)  # type: ignore[arg-type]
        try:
            self._emitter.emit(msg)
        except (TypeError, ValueError):
            safe = {key: _jsonable_or_repr(value) for key, value in fields.items()}
            self._emitter.emit(LogMessage(str(message), level, safe))  # type: ignore[arg-type]

    def progress(
        self,
        percent: float | None = None,
        message: str | None = None,
        *,
        current: int | None = None,
        total: int | None = None,
    ) -> None:
        """Report progress. Coalesced to one message per 0.1 s; 0 and 100 always go out.

        A suppressed update is not lost if it is the latest: it goes out with the next
        update after the interval, or when the job ends.
        """
        if percent is None and message is None and current is None:
            raise ValueError("progress() needs percent, message or current")
        if percent is not None and not (is_finite_number(percent) and 0 <= percent <= 100):
            raise ValueError(f"progress percent must be a number from 0 to 100, got {percent!r}")
        for name, value in (("current", current), ("total", total)):
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"progress {name} must be a non-negative int, got {value!r}")
        if message is not None:
            message = str(message)
        msg = ProgressMessage(percent, message, current, total)
        edge = percent in (0, 100) or (current is not None and current in (0, total))
        with self._lock:
            now = self._clock()
            last = self._last_progress_at
            if not edge and last is not None and now - last < self._interval:
                self._pending_progress = msg
                return
            self._last_progress_at = now
            self._pending_progress = None
        self._emitter.emit(msg)

    def flush_progress(self) -> None:
        """Send a coalesced progress update that is still waiting (the runner calls this)."""
        with self._lock:
            msg, self._pending_progress = self._pending_progress, None
        if msg is not None:
            self._emitter.emit(msg)

    def set_output(self, key: str, value: Any) -> None:
        """Publish an output; raises OutputError if ``key`` is empty or ``value`` not JSON."""
        normalised = _normalise_output(key, value)
        if self._offload is not None:
            normalised = self._offload(key, normalised)
        with self._lock:
            self._outputs[key] = normalised
        self._emitter.emit(OutputMessage(key, normalised))

    def fail(self, message: str, exit_code: int = 1) -> NoReturn:
        """End the job as failed with ``message`` (no traceback); exit code 1 by default."""
        raise JobFailed(message, exit_code)

    # -- artifacts ------------------------------------------------------------------------
    # The artifact modules are imported on first use: a job that never touches artifacts
    # starts as fast as before.

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store (``SHOAL_ARTIFACTS`` and friends), opened on first use.

        Raises ``ArtifactError`` when none is configured.
        """
        with self._store_lock:
            if self._store is None and self._store_factory is not None:
                self._store = self._store_factory()
            if self._store is None:
                from .artifacts import ArtifactError, StoreSettings, open_store

                settings = StoreSettings.from_env(self._env)
                if settings is None:
                    raise ArtifactError(
                        "no artifact store is configured for this job: set SHOAL_ARTIFACTS "
                        "to s3://bucket/prefix or file:///absolute/path"
                    )
                self._store = open_store(settings)
            return self._store

    def save_artifact(
        self, name: str, source: bytes | str | os.PathLike[str] | BinaryIO
    ) -> ArtifactRef:
        """Store ``source`` as this run's artifact ``name``; returns the reference.

        ``source`` is bytes, a file path (``str`` or ``Path``: a str is a path, not
        text) or a binary file object, read to its end. Return ``ref.as_output()`` (or
        pass it to ``set_output``) so later nodes can load it.
        """
        from .artifacts import artifact_key

        if not isinstance(name, str) or not _ARTIFACT_NAME.fullmatch(name):
            raise ValueError(
                f"artifact name {name!r}: use letters, digits, '.', '_', '=' and '-' "
                "(not starting with '.')"
            )
        if name.startswith(OUTPUT_KEY_PREFIX):
            raise ValueError(
                f"artifact name {name!r}: names starting with {OUTPUT_KEY_PREFIX!r} are "
                "reserved for outputs the worker offloads"
            )
        key = artifact_key(
            self.namespace or "local",
            self.workflow or "local",
            self.workflow_uid or "local",
            self.node or "local",
            self.item_index,
            self.attempt,
            name,
        )
        store = self.artifacts
        started = time.monotonic()
        if isinstance(source, bytes | bytearray | memoryview):
            ref = store.put_bytes(key, bytes(source))
        elif isinstance(source, str | os.PathLike):
            ref = store.put_file(key, source)
        elif callable(getattr(source, "read", None)):
            ref = store.put_stream(key, source)
        else:
            raise TypeError(
                f"save_artifact({name!r}): source must be bytes, a path or a binary file "
                f"object, got {type(source).__name__}"
            )
        self._log_transfer("saved artifact", ref, started, name=name)
        return ref

    def open_artifact(self, ref: ArtifactRef | Mapping[str, Any]) -> Iterator[bytes]:
        """Stream an artifact in chunks; ``ArtifactCorrupted`` at the end on a mismatch.

        ``ref`` is an ``ArtifactRef`` or the ``{"$artifact": ...}`` value an upstream
        output (or argument) carries.
        """
        artifact = _as_ref(ref)
        started = time.monotonic()
        chunks = self.artifacts.open(artifact)

        def logged() -> Iterator[bytes]:
            yield from chunks
            self._log_transfer("read artifact", artifact, started)

        return logged()

    if TYPE_CHECKING:

        @overload
        def load_artifact(
            self, ref: ArtifactRef | Mapping[str, Any], path: None = None
        ) -> bytes: ...

        @overload
        def load_artifact(
            self, ref: ArtifactRef | Mapping[str, Any], path: str | os.PathLike[str]
        ) -> Path: ...

    def load_artifact(
        self, ref: ArtifactRef | Mapping[str, Any], path: str | os.PathLike[str] | None = None
    ) -> bytes | Path:
        """An artifact's bytes, or with ``path`` the file written there (verified either way).

        ``ref`` is an ``ArtifactRef`` or an upstream output's ``{"$artifact": ...}``.
        """
        artifact = _as_ref(ref)
        started = time.monotonic()
        result: bytes | Path
        if path is None:
            result = self.artifacts.read_bytes(artifact)
        else:
            result = self.artifacts.get_file(artifact, path)
        self._log_transfer("loaded artifact", artifact, started)
        return result

    def _log_transfer(self, what: str, ref: ArtifactRef, started: float, **fields: Any) -> None:
        seconds = time.monotonic() - started
        self.log(
            what,
            **fields,
            key=ref.key,
            size=ref.size,
            seconds=round(seconds, 3),
            store=self.artifacts.describe(),
        )

    def _record_outputs(self, values: Mapping[str, Any]) -> None:
        """Add outputs without emitting them (return values travel in the result)."""
        normalised = {key: _normalise_output(key, value) for key, value in values.items()}
        if self._offload is not None:
            normalised = {key: self._offload(key, value) for key, value in normalised.items()}
        with self._lock:
            self._outputs.update(normalised)

    def __repr__(self) -> str:
        where = "/".join(str(part) for part in (self.namespace, self.workflow, self.node) if part)
        return f"<Context {where or 'local'} item={self.item_index} attempt={self.attempt}>"


def _as_ref(value: Any) -> ArtifactRef:
    from .artifacts import ArtifactRef

    if isinstance(value, ArtifactRef):
        return value
    ref = ArtifactRef.from_output(value)
    if ref is None:
        raise TypeError(
            'expected an ArtifactRef or an artifact reference {"$artifact": {"key": ..., '
            f'"size": ..., "sha256": ...}}}}, got {_short(value)}'
        )
    return ref


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _normalise_output(key: object, value: Any) -> Any:
    if not isinstance(key, str) or not key:
        raise OutputError(f"output keys must be non-empty strings, got {key!r}")
    try:
        return json.loads(dumps(value))
    except (TypeError, ValueError) as exc:
        raise OutputError(f"output {key!r} is not JSON-serialisable: {exc}") from None


def _jsonable_or_repr(value: Any) -> Any:
    try:
        dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _env_int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None
