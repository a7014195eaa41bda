"""The one reader of a stored status: whatever the Workflow object holds -> `WorkflowStatus`.

The status is the operator's memory across restarts, but anyone with write access to the
status subresource can edit it, and an older or newer operator may have written it. So
reading never fails: a field that does not fit the model is dropped (its default takes its
place) and the rest is kept, and an entry missing a required field goes as a whole.
Unknown fields are ignored (the status models' configuration).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shoal.api.workflow import WorkflowStatus

__all__ = ["read_status"]

MAX_REPAIR_PASSES = 8
"""Each pass drops every field the validator named; one pass normally suffices, more only
when dropping an entry's field leaves the entry itself invalid."""


def read_status(raw: object) -> WorkflowStatus:
    """The typed status of `raw` (a decoded JSON object, or None for a new Workflow)."""
    if not isinstance(raw, dict):
        return WorkflowStatus()
    candidate: Any = raw
    for _ in range(MAX_REPAIR_PASSES):
        try:
            return WorkflowStatus.model_validate(candidate)
        except ValidationError as err:
            candidate = _without(candidate, [e["loc"] for e in err.errors()])
    return WorkflowStatus()


def _without(value: Any, locations: list[tuple[int | str, ...]]) -> Any:
    """A copy of `value` without what each location names (the entry holding a missing
    field, the field itself otherwise); `value` itself is left alone."""
    doomed: set[tuple[int | str, ...]] = set()
    for loc in locations:
        path = _existing_prefix(value, loc)
        if path:
            doomed.add(path)
    return _drop(value, doomed, ())


def _existing_prefix(value: Any, loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The longest prefix of `loc` that exists in `value`: the field the error names, or
    the entry that lacks it. Pydantic adds non-key steps (union member names); those end
    the walk too."""
    found: list[int | str] = []
    for step in loc:
        in_dict = isinstance(value, dict) and step in value
        in_list = isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value)
        if not (in_dict or in_list):
            break
        value = value[step]
        found.append(step)
    return tuple(found)


def _drop(value: Any, doomed: set[tuple[int | str, ...]], at: tuple[int | str, ...]) -> Any:
    if not any(d[: len(at)] == at for d in doomed):
        return value  # nothing to drop below here: shared, not copied
    if isinstance(value, dict):
        return {k: _drop(v, doomed, (*at, k)) for k, v in value.items() if (*at, k) not in doomed}
    if isinstance(value, list):
        return [_drop(v, doomed, (*at, i)) for i, v in enumerate(value) if (*at, i) not in doomed]
    return value
