"""`@job` functions as node targets: their registered name, and their arguments checked.

The worker binds JSON arguments to the function when the pod starts; the same check
here, when the workflow is built, turns a typo into an error before anything runs.
Arguments that are templates are only checked for their name (their value is known
at run time), unless the producing job declares the output's type.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shoal.sdk.refs import FanOut, Ref, SdkError
from shoal_worker import registry
from shoal_worker.args import check_value, wants_context

__all__ = ["JobTarget", "check_arguments", "declared_outputs", "target_of"]

JobFunction = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class JobTarget:
    """What a job node runs: the name in the manifest and, if known, the function."""

    name: str
    func: JobFunction | None


def target_of(job: JobFunction | str) -> JobTarget:
    """The registered name of a `@job` function (else `module:function`), or a name as is.

    A name given as a string is looked up in this process's registry so its arguments
    can be checked; a job that only exists in the worker image stays unchecked.
    """
    if isinstance(job, str):
        found = registry.get(job)
        return JobTarget(job, found.func if found is not None else None)
    if not callable(job):
        raise SdkError(f"a job node needs a @job function or a job name, got {job!r}")
    for name in registry.names():
        spec = registry.get(name)
        if spec is not None and spec.func is job:
            return JobTarget(name, job)
    module = getattr(job, "__module__", None)
    qualname = getattr(job, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise SdkError(
            f"{qualname or job!r} is neither a registered @job nor importable as module:function"
        )
    return JobTarget(f"{module}:{qualname}", job)


def _signature(func: JobFunction) -> inspect.Signature:
    try:
        return inspect.signature(func, eval_str=True)
    except Exception:
        return inspect.signature(func)


def _hints(func: JobFunction) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:
        return {}


def declared_outputs(func: JobFunction | None) -> dict[str, Any] | None:
    """Output names and types when the job returns a TypedDict or a pydantic model."""
    if func is None:
        return None
    kind = _hints(func).get("return")
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return {name: field.annotation for name, field in kind.model_fields.items()}
    if isinstance(kind, type) and typing.is_typeddict(kind):
        return dict(typing.get_type_hints(kind))
    return None


def check_arguments(node: str, target: JobTarget, args: dict[str, Any]) -> None:
    """SdkError naming the node and argument if `args` do not fit the job's signature."""
    if target.func is None:
        return
    params = list(_signature(target.func).parameters.values())
    if params and wants_context(target.func):
        params = params[1:]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    named = {
        p.name: p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    problems = [
        f"unknown argument {name!r} (job {target.name!r} takes: {', '.join(named) or 'none'})"
        for name in args
        if name not in named and not takes_any
    ]
    problems += [
        f"missing required argument {name!r}"
        for name, p in named.items()
        if p.default is inspect.Parameter.empty and name not in args
    ]
    for name, value in args.items():
        if name in named:
            problems += _type_problems(name, value, named[name].annotation)
    if problems:
        raise SdkError(f"node {node!r}: " + "; ".join(problems))


def _type_problems(name: str, value: Any, annotation: Any) -> list[str]:
    """What is wrong with one argument's value, as far as it is known now."""
    if annotation is inspect.Parameter.empty:
        return []
    if isinstance(value, FanOut):
        if value.sequence is not None:  # integers, or text with a format
            sample = "" if "format" in value.sequence else 0
            return [p for p in [_literal_problem(name, sample, annotation)] if p]
        if isinstance(value.values, list):
            return [p for v in value.values if (p := _literal_problem(name, v, annotation))]
        element = _element_type(value.values.type)
        return _edge_problem(name, value.values, element, annotation)
    if isinstance(value, Ref):
        return _edge_problem(name, value, value.type, annotation)
    problem = _literal_problem(name, value, annotation)
    return [problem] if problem else []


def _literal_problem(name: str, value: Any, annotation: Any) -> str | None:
    if _holds_template(value):
        return None
    return check_value(value, annotation, name)


def _holds_template(value: Any) -> bool:
    if isinstance(value, Ref | str):
        return isinstance(value, Ref) or "${{" in value
    if isinstance(value, dict):
        return any(_holds_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_template(v) for v in value)
    return False


def _element_type(kind: Any) -> Any:
    if typing.get_origin(kind) is list:
        args = typing.get_args(kind)
        return args[0] if args else None
    return None


_PLAIN = (str, int, float, bool, list, dict)


def _edge_problem(name: str, ref: Ref, produced: Any, wanted: Any) -> list[str]:
    """A declared output type that cannot fill the argument (plain types only)."""
    have, want = typing.get_origin(produced) or produced, typing.get_origin(wanted) or wanted
    if have not in _PLAIN or want not in _PLAIN or have is want:
        return []
    if want is float and have is int:
        return []
    return [f"argument {name!r} expects {want.__name__}, but {ref.expr} is {have.__name__}"]
