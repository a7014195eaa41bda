"""How Shoal reads a cron schedule: five standard fields, or six with seconds first.

Five fields are standard cron: `minute hour day-of-month month day-of-week`. Six fields put
seconds *first* (`second minute hour day-of-month month day-of-week`), as Quartz, Spring and
Argo users write them; croniter, which does the arithmetic, wants seconds last, so the
schedule is reordered before it reaches croniter. A six-field schedule that can only have
been written seconds-last (`* * * * * */2`: every second, and a step over weekdays) is
refused with the way to write it, rather than silently read as something else.

Pure and small so that both the API models (validation) and the cron controller use it.
"""

from __future__ import annotations

import re

__all__ = ["croniter_form", "describe", "schedule_problem"]

_MACROS = {
    "@yearly": "Once a year, at midnight on January 1",
    "@annually": "Once a year, at midnight on January 1",
    "@monthly": "Once a month, at midnight on the 1st",
    "@weekly": "Once a week, at midnight on Sunday",
    "@daily": "Once a day, at midnight",
    "@midnight": "Once a day, at midnight",
    "@hourly": "Once an hour, at minute 0",
}
_FIELDS = "second minute hour day-of-month month day-of-week"
_STEP = re.compile(r"^\*/\d+$")
_NUMBER = re.compile(r"^\d+$")


def _looks_seconds_last(fields: list[str]) -> bool:
    """`* ... X` where X cannot be a sensible weekday: a step (`*/2`) or a number over 7."""
    last = fields[-1]
    weekday_out_of_range = bool(_NUMBER.match(last)) and int(last) > 7
    return fields[0] == "*" and (bool(_STEP.match(last)) or weekday_out_of_range)


def schedule_problem(expr: str) -> str | None:
    """Why `expr` is not a schedule Shoal accepts, in words with the fix, or None."""
    text = expr.strip()
    if text in _MACROS:
        return None
    fields = text.split()
    if len(fields) not in (5, 6):
        count = f"{len(fields)} field{'' if len(fields) == 1 else 's'}"
        return (
            f"{expr!r} has {count}; a schedule has 5 (minute hour day-of-month "
            f"month day-of-week) or 6 with seconds first ({_FIELDS}), or is one of "
            f"{', '.join(_MACROS)}"
        )
    if len(fields) == 6 and _looks_seconds_last(fields):
        fixed = " ".join([fields[-1], *fields[:-1]])
        return (
            f"{expr!r}: six fields are read seconds first ({_FIELDS}), as in Quartz and "
            f"Argo, so {fields[-1]!r} would be the day of the week; for seconds write "
            f"{fixed!r}"
        )
    # Imported here: croniter's import runs `file` on the interpreter (platform.architecture),
    # ~70 ms that a Workflow without a schedule should not pay.
    from croniter import croniter

    if not croniter.is_valid(croniter_form(text)):
        return f"not a valid cron expression: {expr!r}"
    return None


def croniter_form(expr: str) -> str:
    """The same schedule in croniter's order (its optional seconds field is the last)."""
    fields = expr.split()
    if len(fields) == 6:
        return " ".join([*fields[1:], fields[0]])
    return expr.strip()


def describe(expr: str) -> str:
    """The schedule in words (`Every 2 seconds`, `At 03:00 AM, Monday through Friday`)."""
    text = expr.strip()
    if text in _MACROS:
        return _MACROS[text]
    # cron-descriptor reads six fields seconds first too; imported here, on first use, so
    # that reading a manifest does not load it.
    from cron_descriptor import Options, get_description  # type: ignore[import-untyped]

    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(get_description(text, options))
    except Exception:
        return text
