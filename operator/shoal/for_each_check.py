"""The `forEach` check that needs no job code: a list known before anything runs must be one.

`shoal validate`'s fast path (`shoal.fast_validate`) runs it on every file; it lives apart
from `shoal.job_check` (which re-exports it) because that module imports `inspect` and the
worker's argument checker for `--import`, which a plain validation never needs.
"""

from __future__ import annotations

from shoal.core.expressions import Expression, ExpressionError
from shoal.core.validation import Problem

TYPE_CHECKING = False  # `typing` would cost `shoal validate` its import
if TYPE_CHECKING:
    from shoal.core.compiled import CompiledWorkflow

__all__ = ["for_each_problems"]

_PARAM_SCOPE = frozenset({"params", "workflow"})


def for_each_problems(wf: CompiledWorkflow) -> list[Problem]:
    """`forEach` expressions that read only parameters, evaluated now: each must be a list."""
    scope = {"params": wf.params, "workflow": wf.meta.as_context()}
    problems: list[Problem] = []
    for node in wf.nodes.values():
        expr = node.for_each
        if not isinstance(expr, Expression) or not expr.variables or expr.node_refs:
            continue
        if not expr.variables <= _PARAM_SCOPE or expr.dynamic_nodes:
            continue
        try:
            value = expr.evaluate(scope)
        except ExpressionError:
            continue  # compile_workflow already reports what cannot be evaluated
        if not isinstance(value, list):
            message = f"{expr.source} must yield a list, got {type(value).__name__} ({value!r:.60})"
            problems.append(Problem(message, node.name, "forEach"))
    return problems
