"""Binding JSON arguments to a job function, checked against its annotations.

Arguments arrive as JSON, so a wrong type is a usage error to report before the job
runs ("job 'x': argument 'region': expected str, got int"), not a TypeError deep in
job code. Only basic types are checked (str, int, float, bool, list, dict, None,
unions, ``list[X]``, ``dict[str, X]``, Literal); anything else is passed unchecked.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types

from .errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .context import Context
    from .registry import JobSpec

_EMPTY = inspect.Parameter.empty
_CONTEXT_NAMES = ("Context", "shoal_worker.Context", "shoal_worker.context.Context")


def _signature(func: Callable[..., Any]) -> inspect.Signature:
    try:
        # Resolves string annotations (from __future__ import annotations) in the
        # function's own module; unresolvable ones stay strings and go unchecked.
        return inspect.signature(func, eval_str=True)
    except Exception:
        return inspect.signature(func)


def _is_context(param: inspect.Parameter) -> bool:
    if param.name == "ctx":
        return True
    annotation = param.annotation
    if isinstance(annotation, str):
        return annotation in _CONTEXT_NAMES
    from .context import Context

    return isinstance(annotation, type) and issubclass(annotation, Context)


def wants_context(func: Callable[..., Any]) -> bool:
    """True if the first parameter is named ``ctx`` or annotated ``Context``."""
    params = list(_signature(func).parameters.values())
    return bool(params) and params[0].kind in _POSITIONAL and _is_context(params[0])


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def bind(spec: JobSpec, args: dict[str, Any], ctx: Context) -> Callable[[], Any]:
    """A zero-argument callable that runs the job; UsageError if ``args`` do not fit."""
    try:
        signature = _signature(spec.func)
    except (TypeError, ValueError):
        # No introspectable signature (some builtins): pass the arguments blindly.
        return functools.partial(spec.func, **args)
    params = list(signature.parameters.values())
    with_ctx = bool(params) and params[0].kind in _POSITIONAL and _is_context(params[0])
    if with_ctx:
        params = params[1:]

    accepted: dict[str, inspect.Parameter] = {}
    var_keyword: inspect.Parameter | None = None
    problems: list[str] = []
    for param in params:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = param
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        elif param.kind is inspect.Parameter.POSITIONAL_ONLY:
            if param.default is _EMPTY:
                problems.append(
                    f"parameter {param.name!r} is positional-only; "
                    "job arguments are passed by keyword"
                )
        else:
            accepted[param.name] = param

    missing = [
        name for name, param in accepted.items() if param.default is _EMPTY and name not in args
    ]
    unknown = [name for name in args if name not in accepted] if var_keyword is None else []
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        problems.append(f"missing required argument{'s' if len(missing) > 1 else ''} {listed}")
    if unknown:
        problems.append(_unknown_problem(unknown, list(accepted)))
    for name, value in args.items():
        known = accepted.get(name)
        annotation = known.annotation if known is not None else _EMPTY
        if known is None and var_keyword is not None:
            annotation = var_keyword.annotation
        problem = check_value(value, annotation, name)
        if problem:
            problems.append(problem)

    if problems:
        expected = ", ".join(_describe_param(param) for param in accepted.values())
        if var_keyword is not None:
            expected = ", ".join(filter(None, [expected, f"**{var_keyword.name}"]))
        raise UsageError(
            f"job {spec.name!r}: "
            + "; ".join(problems)
            + f". Expected: {expected or 'no arguments'}"
        )
    if with_ctx:
        return functools.partial(spec.func, ctx, **args)
    return functools.partial(spec.func, **args)


def _unknown_problem(unknown: list[str], accepted: list[str]) -> str:
    import difflib

    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    return f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(parts)}"


def _describe_param(param: inspect.Parameter) -> str:
    text = param.name
    if param.annotation is not _EMPTY:
        text += f": {describe_type(param.annotation)}"
    if param.default is not _EMPTY:
        text += f" = {param.default!r}"
    return text


def describe_type(annotation: Any) -> str:
    """``str``, ``int | None``, ``list[str]``: annotations as people write them."""
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def _value_type(value: object) -> str:
    return "None" if value is None else type(value).__name__


def check_value(value: Any, annotation: Any, path: str) -> str | None:
    """None if ``value`` fits ``annotation``, else "argument 'path': expected X, got Y"."""
    if _fits(value, annotation):
        return None
    origin = getattr(annotation, "__origin__", None)
    type_args: tuple[Any, ...] = getattr(annotation, "__args__", None) or ()
    # Point at the offending element of a container rather than the whole container.
    if origin is list and len(type_args) == 1 and isinstance(value, list):
        for index, item in enumerate(value):
            inner = check_value(item, type_args[0], f"{path}[{index}]")
            if inner:
                return inner
    if origin is dict and len(type_args) == 2 and isinstance(value, dict):
        for key, item in value.items():
            inner = check_value(item, type_args[1], f"{path}[{key!r}]")
            if inner:
                return inner
    return f"argument {path!r}: expected {describe_type(annotation)}, got {_value_type(value)}"


def _fits(value: Any, annotation: Any) -> bool:
    if annotation is _EMPTY or annotation is object or isinstance(annotation, str):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation in (str, list, dict):
        return isinstance(value, annotation)
    typing = sys.modules.get("typing")  # typing constructs exist only if typing was imported
    if typing is not None and annotation is typing.Any:
        return True
    origin = getattr(annotation, "__origin__", None)
    type_args: tuple[Any, ...] = getattr(annotation, "__args__", None) or ()
    if isinstance(annotation, types.UnionType) or (typing is not None and origin is typing.Union):
        return any(_fits(value, member) for member in type_args)
    if origin is list:
        return isinstance(value, list) and (
            len(type_args) != 1 or all(_fits(item, type_args[0]) for item in value)
        )
    if origin is dict:
        if not isinstance(value, dict):
            return False
        if len(type_args) != 2:
            return True
        return all(
            _fits(key, type_args[0]) and _fits(item, type_args[1]) for key, item in value.items()
        )
    if typing is not None and origin is typing.Literal:
        return any(type(value) is type(choice) and value == choice for choice in type_args)
    return True
