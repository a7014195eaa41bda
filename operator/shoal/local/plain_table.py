"""The final node table of `shoal run --plain` (and of any run whose output is not a
terminal), drawn without rich.

Plain output is what CI logs and pipes get, and what a short run is mostly made of:
importing rich and laying a table out with it cost more than a 50-node chain of `true`
itself. This draws the same table (the same columns and rules, long cells wrapped at
words within the width) with string formatting; the live view keeps rich
(local/tables.py). The cell texts are shared with it: `duration`, `items_text`.
"""

from __future__ import annotations

import os
import textwrap
import time
from typing import TextIO

from shoal.api.enums import NodePhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.state import NodeState, RunState
from shoal.local.failures import first_line
from shoal.local.runview import NodeView, RunView, retries_text, short_json

__all__ = [
    "duration",
    "items_text",
    "node_cells",
    "render_plain_summary",
    "shown",
    "table_lines",
]

MESSAGE_CHARS = 120
ERROR_CHARS = 600
"""A failed node's error in the final table: long enough for a list of known job names."""
COLUMNS = ("node", "phase", "items", "retries", "time", "message")
DEFAULT_WIDTH = 80
"""Without $COLUMNS, the width a table is fitted in (rich's default off a terminal)."""
MIN_LAST_WIDTH = 20
UNSHOWN_CONTROLS = dict.fromkeys((7, 8, 11, 12, 13))
"""Bell, backspace, vertical tab, form feed, carriage return: dropped from what plain
output shows (as rich drops them), so a child's line cannot overwrite an earlier one."""


def shown(text: str) -> str:
    """`text` without the control characters plain output never shows."""
    return text.translate(UNSHOWN_CONTROLS)


def duration(ns: NodeState, now: float) -> str:
    if ns.started_at is None:
        return ""
    return f"{(ns.finished_at or now) - ns.started_at:.1f}s"


def items_text(ns: NodeState, view: NodeView) -> str:
    """Items done of all (a fan-out), else the job's own `current/total` or percentage."""
    if ns.fan_out:
        done = f"{ns.succeeded + ns.failed}/{ns.total}"
        return done + (f" ({ns.failed} failed)" if ns.failed else "")
    progress = view.running.get(None) or view.last
    if progress is None:
        return ""
    if ns.phase.finished and "/" not in progress.label:
        return ""  # a finished node's last percentage says nothing more than its phase
    return progress.label


def message_text(ns: NodeState, view: NodeView, run: RunView) -> str:
    """A finished node's message: a failure's error once with its frame, else its own."""
    if view.failure is not None and ns.phase is NodePhase.FAILED:
        text = first_line(view.failure.error, ERROR_CHARS)
        if view.failures > 1:
            text += f" (in {view.failures} attempts)"
        if view.failure.at:
            text += f"\nat {first_line(view.failure.at, ERROR_CHARS)}"
        return text
    return first_line(run.mention(ns.message), MESSAGE_CHARS)


def node_cells(name: str, ns: NodeState, view: NodeView, run: RunView, now: float) -> list[str]:
    """One row of the final table, as text."""
    return [
        name,
        ns.phase.value,
        items_text(ns, view),
        retries_text(view.retries),
        duration(ns, now),
        message_text(ns, view, run),
    ]


def _wrap(cell: str, width: int) -> list[str]:
    lines: list[str] = []
    for part in cell.split("\n"):
        lines += textwrap.wrap(part, width, break_on_hyphens=False) or [""]
    return lines


def table_lines(header: tuple[str, ...], rows: list[list[str]], width: int) -> list[str]:
    """Rows under a header, the columns ruled as rich rules them (no outer edge); the last
    column wraps at words when the table would be wider than `width`."""
    columns = list(zip(header, *rows, strict=True))
    widths = [max(len(line) for cell in column for line in cell.split("\n")) for column in columns]
    fixed = sum(w + 3 for w in widths[:-1]) + 2
    widths[-1] = min(widths[-1], max(width - fixed, MIN_LAST_WIDTH))
    out = [" " + " ┃ ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " "]
    out.append("╇".join("━" * (w + 2) for w in widths))
    for row in rows:
        cells = [_wrap(cell, w) for cell, w in zip(row, widths, strict=True)]
        for i in range(max(len(c) for c in cells)):
            parts = [_line(c, i).ljust(w) for c, w in zip(cells, widths, strict=True)]
            out.append(" " + " │ ".join(parts) + " ")
    return out


def _line(lines: list[str], i: int) -> str:
    return lines[i] if i < len(lines) else ""


def render_plain_summary(out: TextIO, wf: CompiledWorkflow, state: RunState, run: RunView) -> None:
    """The final table, the outputs, the verdict: as `render_summary`, in plain text."""
    now = time.time()
    rows = [node_cells(n, state.nodes[n], run.node(n), run, now) for n in wf.order]
    width = _width(out)
    lines = table_lines(COLUMNS, rows, width)
    outputs = {n: state.nodes[n].outputs for n in wf.order if state.nodes[n].outputs}
    if outputs:
        lines.append("outputs:")
        lines += [f"  {name}: {short_json(values, 400)}" for name, values in outputs.items()]
    elapsed = (state.finished_at or now) - (state.started_at or now)
    verdict = f"workflow {wf.meta.name} {state.phase.value} in {elapsed:.1f}s"
    if state.message:
        verdict += f": {first_line(run.mention(state.message))}"
    lines.append(verdict)
    out.write(shown("\n".join(lines)) + "\n")
    out.flush()


def _width(out: TextIO) -> int:
    """$COLUMNS, else the terminal's width (`--plain` on one), else 80."""
    try:
        return max(int(os.environ.get("COLUMNS", "")), 40)
    except ValueError:
        pass
    try:
        return os.get_terminal_size(out.fileno()).columns if out.isatty() else DEFAULT_WIDTH
    except (OSError, ValueError, AttributeError):  # a stream without a usable fd
        return DEFAULT_WIDTH
