"""Checks a manifest can only get from the job code or the parameters: job names, arguments,
and `forEach` lists whose value is known before anything runs.

`shoal validate --import MODULE` and `shoal run --import MODULE` import the job modules
first, so an unknown job or a misspelt argument is reported at file:line:column before a
single pod or process starts, instead of once per attempt at run time. The argument check
is the worker's own (`shoal_worker.args`), so validation and the worker cannot disagree.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.core.compiled import CompiledNode, CompiledWorkflow
from shoal.core.validation import InvalidWorkflow, Problem
from shoal.for_each_check import for_each_problems
from shoal.import_path import import_path
from shoal_worker import registry
from shoal_worker.args import check_value, wants_context
from shoal_worker.errors import UsageError

if TYPE_CHECKING:
    from shoal.manifests import Manifest

__all__ = [
    "argument_problems",
    "check_manifest",
    "for_each_problems",
    "import_jobs",
    "import_jobs_for",
    "import_path",
    "job_problems",
]

JobFunction = Callable[..., Any]
Lookup = Callable[[str], JobFunction]
"""A job's function by name; raises `registry.UnknownJobError` or `UsageError`."""

_EMPTY = inspect.Parameter.empty
_LISTED = 20
"""At most this many job names in an unknown-job message."""


def _resolve(name: str) -> JobFunction:
    return registry.resolve(name).func


def check_manifest(
    manifest: Manifest, wf: CompiledWorkflow, imports: Sequence[str], lookup: Lookup = _resolve
) -> None:
    """InvalidWorkflow (with file:line:column) when a known `forEach` is not a list or,
    given job modules (imported already), a job node names an unknown job or wrong args."""
    problems = for_each_problems(wf)
    if imports:
        problems += job_problems(wf, lookup)
    if problems:
        from shoal.manifests import locate

        raise InvalidWorkflow(locate(problems, manifest.document), manifest.source)


@contextmanager
def _search_path(paths: Sequence[Path]) -> Iterator[None]:
    saved = list(sys.path)
    sys.path[:0] = [str(p) for p in paths]
    try:
        yield
    finally:
        sys.path[:] = saved


def import_jobs_for(modules: Sequence[str], manifest_dir: Path, source: str) -> None:
    """Import `--import` modules as `shoal validate` and `shoal run` (either path) look for
    them: beside the manifest, then the current directory, then $PYTHONPATH."""
    here = Path.cwd()
    import_jobs(modules, import_path(manifest_dir, here, os.environ.get("PYTHONPATH")), source)


def import_jobs(modules: Sequence[str], paths: Sequence[Path], source: str) -> None:
    """Import the modules that register jobs, looked for first in `paths`."""
    with _search_path(paths):
        try:
            registry.import_modules(modules)
        except UsageError as err:
            raise InvalidWorkflow([Problem(str(err), field="--import")], source) from None


def job_problems(wf: CompiledWorkflow, lookup: Lookup) -> list[Problem]:
    """Every job node's job, looked up; its literal arguments against the signature."""
    problems: list[Problem] = []
    for node in wf.nodes.values():
        job = node.spec.job
        if job is None:
            continue
        try:
            func = lookup(job)
        except registry.UnknownJobError as err:
            hint = f"; did you mean {err.suggestion!r}?" if err.suggestion else ""
            names = [n for n in err.known if not n.startswith(registry.RESERVED_PREFIX)]
            known = ", ".join(names[:_LISTED]) + (", ..." if len(names) > _LISTED else "")
            message = f"unknown job {job!r}{hint} (jobs imported: {known or 'none'})"
            problems.append(Problem(message, node.name, "job"))
            continue
        except UsageError as err:
            problems.append(Problem(str(err), node.name, "job"))
            continue
        problems += [
            Problem(message, node.name, field)
            for field, message in argument_problems(func, _given_args(node))
        ]
        problems += _item_problems(func, node)
    return problems


def _given_args(node: CompiledNode) -> dict[str, Any]:
    args = dict(node.spec.args) if isinstance(node.spec.args, dict) else {}
    if node.item_arg is not None:
        args.setdefault(node.item_arg, _TEMPLATE)  # the item arrives at run time
    return args


_TEMPLATE = "${{ item }}"


def _parameters(func: JobFunction) -> list[inspect.Parameter] | None:
    try:  # annotations as the worker resolves them; unresolvable ones stay unchecked
        signature = inspect.signature(func, eval_str=True)
    except Exception:
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return None  # no signature to check against (some builtins): the worker passes all
    params = list(signature.parameters.values())
    return params[1:] if params and wants_context(func) else params


def argument_problems(func: JobFunction, args: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each argument that cannot bind; values holding a `${{ }}`
    template are checked for their name only (their value exists at run time)."""
    params = _parameters(func)
    if params is None:
        return []
    by_name = {
        p.name: p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    found: list[tuple[str, str]] = []
    for name, value in args.items():
        param = by_name.get(name)
        if param is None and not takes_any:
            from difflib import get_close_matches  # only for a mistake (start-up)

            close = get_close_matches(name, list(by_name), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            takes = ", ".join(by_name) or "no arguments"
            found.append((f"args.{name}", f"unknown argument ({hint}the job takes: {takes})"))
        elif param is not None and not _holds_template(value):
            problem = check_value(value, param.annotation, name)
            found += [(f"args.{name}", problem)] if problem else []
    missing = [n for n, p in by_name.items() if p.default is _EMPTY]
    for name in (n for n in missing if n not in args):
        found.append(("job", f"missing required argument {name!r}"))
    for param in params:
        if param.kind is inspect.Parameter.POSITIONAL_ONLY and param.default is _EMPTY:
            message = (
                f"parameter {param.name!r} is positional-only; job arguments are passed by keyword"
            )
            found.append(("job", message))
    return found


def _item_problems(func: JobFunction, node: CompiledNode) -> list[Problem]:
    """A literal `forEach` list whose items do not fit the `itemArg` argument's type."""
    items = node.spec.for_each
    params = _parameters(func) if node.item_arg is not None and isinstance(items, list) else None
    param = next((p for p in params or [] if p.name == node.item_arg), None)
    if param is None or not isinstance(items, list):
        return []
    for index, item in enumerate(items):
        if _holds_template(item):
            continue
        if (problem := check_value(item, param.annotation, str(node.item_arg))) is not None:
            return [Problem(f"item {index}: {problem}", node.name, f"forEach.{index}")]
    return []


def _holds_template(value: Any) -> bool:
    if isinstance(value, str):
        return "${{" in value
    if isinstance(value, dict):
        return any(_holds_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_template(v) for v in value)
    return False
