"""`synchronization` and `memoize` for `shoal run` (docs/flow-control.md).

Locks are held within this process: one `shoal run` is one workflow, so its mutexes and
semaphores order its own nodes (a workflow-level lock is always free). The memo cache is
one JSON file under the state directory (`SHOAL_STATE_DIR`, else `$XDG_STATE_HOME/shoal`,
else `~/.local/state/shoal`), locked with flock while it is read and rewritten, so runs in
parallel terminals share it; it has the bounds of `core/memo.MemoCache`.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import AcquireLocks, Decision, LookupMemo
from shoal.core.flow_gates import (
    LocksGranted,
    LocksWaiting,
    MemoFound,
    memo_result,
    record_gate_event,
    released_by,
)
from shoal.core.locks import LockRequest, LockTable, holder_id
from shoal.core.memo import MemoCache
from shoal.core.state import RunState

__all__ = ["MEMO_FILE", "LocalFlow", "state_dir"]

_T = TypeVar("_T")

MEMO_FILE = "memo.json"
MAX_MEMO_FILE_BYTES = 2 * 1024 * 1024
"""A larger file is not read (it is rewritten from an empty cache)."""


def _node(holder: str) -> str:
    return holder.split("/", 1)[1] if "/" in holder else ""


def state_dir(environ: Mapping[str, str]) -> Path:
    """Where `shoal run` keeps what outlives one run (the memo cache)."""
    if environ.get("SHOAL_STATE_DIR"):
        return Path(environ["SHOAL_STATE_DIR"])
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "shoal"


class LocalFlow:
    """Carries out the gate decisions of one local run; `act` says whether the state
    changed so that the executor plans again before it waits."""

    def __init__(self, wf: CompiledWorkflow, state: RunState, directory: Path) -> None:
        self.wf = wf
        self.state = state
        self.table = LockTable()
        self.memo_path = directory / MEMO_FILE
        self.notes: list[str] = []
        """Why a result was not cached (shown at the end of the run)."""

    def act(self, decision: Decision) -> bool:
        changed = False
        if isinstance(decision, AcquireLocks):
            holder = holder_id("local", decision.node)
            self.table.request(
                LockRequest(
                    holder, self.wf.meta.name, decision.locks, decision.priority, time.time()
                )
            )
            changed = self._grant()
        elif isinstance(decision, LookupMemo):
            found = self._update(lambda c: c.lookup(decision.key, time.time(), decision.max_age))
            outputs = found.outputs if found is not None else None
            record_gate_event(self.state, MemoFound(decision.node, outputs))
            changed = True
        gone = {holder_id("local", name) for name in released_by(self.state, decision)}
        if gone:
            self.table.release(lambda r: r.holder in gone)
            changed = self._grant() or changed
        result = memo_result(self.state, decision)
        if result is not None:
            key, outputs = result
            origin = f"local/{self.wf.meta.name}"
            note = self._update(lambda c: c.store(key, outputs, time.time(), origin))
            if note is not None:
                self.notes.append(f"memoize: not cached: {note}")
        return changed

    def _grant(self) -> bool:
        granted = self.table.grant()
        for req in granted:
            record_gate_event(self.state, LocksGranted(_node(req.holder)))
        for req in self.table.waiters:
            holders = tuple(self.table.blocking(req))
            record_gate_event(self.state, LocksWaiting(_node(req.holder), holders))
        return bool(granted)

    def _update(self, change: Callable[[MemoCache], _T]) -> _T:
        """Read the cache file, apply `change`, write it back, all under an flock."""
        self.memo_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.memo_path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            text = handle.read(MAX_MEMO_FILE_BYTES + 1)
            try:
                raw = json.loads(text) if 0 < len(text) <= MAX_MEMO_FILE_BYTES else {}
            except ValueError:
                raw = {}
            cache = MemoCache.from_json(raw)
            result = change(cache)
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(cache.to_json()))
            handle.flush()
            os.fsync(handle.fileno())
        return result
