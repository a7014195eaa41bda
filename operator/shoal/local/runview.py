"""What the reporters remember beyond the planner's state: progress, retries, errors.

The planner counts attempts (a fan-out's items included), keeps only a percentage of
progress and only a message per failure; a user wants items apart from retries, the
latest progress message of what runs, and each error once with the frame that raised
it. Kept here, free of any drawing library, so the plain and the live view share it.
"""

from __future__ import annotations

import json
from typing import Any

from shoal.local.failures import Failure, first_line
from shoal_worker.records import Record, field

__all__ = ["ItemProgress", "NodeView", "RunView", "retries_text", "short_json"]

QUOTED_CHARS = 24
"""An error this long is recognised inside a longer message (`item 3: <error> (exit code
2)`); a shorter one only when it is the whole message, so `failed` hides nothing else."""

SHOWN_ITEMS = 5
"""At most this many running items of a fan-out get their own progress line."""


class ItemProgress(Record):
    """The latest `ctx.progress(...)` of one running item (or plain node)."""

    fraction: float | None
    label: str
    message: str | None

    @classmethod
    def of(
        cls,
        percent: float | None,
        message: str | None,
        current: int | None,
        total: int | None,
    ) -> ItemProgress:
        fraction = percent / 100 if percent is not None else None
        if current is not None and total:
            label = f"{current}/{total}"
            fraction = fraction if fraction is not None else min(current / total, 1.0)
        elif current is not None:
            label = str(current)
        else:
            label = f"{percent:.0f}%" if percent is not None else ""
        return cls(fraction, label, first_line(message, 120) if message else None)


class NodeView(Record, frozen=False):
    """One node's extra facts."""

    retries: int = 0
    """Attempts beyond each item's first."""
    running: dict[int | None, ItemProgress] = field(default_factory=dict)
    last: ItemProgress | None = None
    """The last progress reported, kept after the node ends (a plain node's `7/7`)."""
    failure: Failure | None = None
    """The first error reported, with its frame when it was a Python exception."""
    failures: int = 0
    """Attempts that failed with that same error."""
    shown: list[str] = field(default_factory=list)
    """Error texts already printed: printed again, they are referred to instead."""
    failed_items_told: bool = False
    repeats: int = 0
    """Item failures not printed because their error was."""


class RunView:
    """Per-node facts gathered from the decisions and the protocol messages."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeView] = {}

    def node(self, name: str) -> NodeView:
        found = self.nodes.get(name)
        if found is None:
            found = self.nodes[name] = NodeView()
        return found

    def started(self, node: str, attempt: int) -> None:
        if attempt > 1:
            self.node(node).retries += 1

    def progress(self, node: str, index: int | None, progress: ItemProgress) -> None:
        view = self.node(node)
        view.running[index] = progress
        view.last = progress

    def ended(self, node: str, index: int | None) -> None:
        self.node(node).running.pop(index, None)

    def failed(self, node: str, failure: Failure) -> None:
        """An attempt reported an error; the node keeps the first one and counts repeats."""
        view = self.node(node)
        if view.failure is None:
            view.failure = failure
        if view.failure.error == failure.error:
            view.failures += 1

    def fresh(self, node: str, text: str) -> bool:
        """True the first time an error text is seen for `node` (then it is remembered)."""
        view = self.node(node)
        key = first_line(text)
        if not key or any(_repeats(shown, key) for shown in view.shown):
            return False
        view.shown.append(key)
        return True

    def mention(self, text: str) -> str:
        """`text` with every error already printed replaced by a pointer to it."""
        for view in self.nodes.values():
            errors = [view.failure.error] if view.failure is not None else []
            for shown in [*view.shown, *errors]:
                if len(shown) >= QUOTED_CHARS and shown in text:
                    text = text.replace(shown, "(error above)")
        return text


def _repeats(shown: str, text: str) -> bool:
    return shown == text or (len(shown) >= QUOTED_CHARS and shown in text)


def short_json(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retries_text(retries: int) -> str:
    if not retries:
        return ""
    return f"{retries} retr{'y' if retries == 1 else 'ies'}"
