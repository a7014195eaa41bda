"""Checks beyond the schema, with errors that name the file, node and field.

`compile_workflow` either returns a `CompiledWorkflow` or raises `InvalidWorkflow` listing
every problem found, so a user fixes a manifest in one round and nothing runs meanwhile.
"""

from __future__ import annotations

from shoal.api.enums import RunPolicy
from shoal.core.children import check_child
from shoal.core.compiled import CompiledNode, CompiledWorkflow, WorkflowMeta
from shoal.core.defaults import resolve_pod
from shoal.core.expressions import (
    ITEM_VARIABLES,
    RETRY_VARIABLES,
    Compiled,
    Expression,
    ExpressionError,
    compile_expression,
    compile_value,
    exit_fields_in,
    expressions_in,
)
from shoal.core.gates import check_gate
from shoal.core.json_size import json_problem
from shoal.core.sequence import SequenceError, check_format, sequence_items
from shoal_worker.records import Record
from shoal_worker.records import field as record_field  # `field` is a Problem's field

TYPE_CHECKING = False  # `typing` (and `dataclasses`) would cost `shoal validate`

if TYPE_CHECKING:  # types only: `shoal validate`'s fast check feeds views, not models
    from collections.abc import Iterable, Iterator
    from typing import Any

    from shoal.api.common import EnvVar
    from shoal.api.workflow import Node, WithSequence, WorkflowSpec


class Problem(Record):
    """One thing wrong with a manifest; `line` and `column` say where in the source file
    (1-based), when the manifest was read from one, and take no part in equality."""

    message: str
    node: str | None = None
    field: str | None = None
    line: int | None = record_field(default=None, compare=False)
    column: int | None = record_field(default=None, compare=False)

    def describe(self, source: str | None = None) -> str:
        if source and self.line is not None:
            source = f"{source}:{self.line}:{self.column}"
        parts = [p for p in (source, self.node and f"node {self.node!r}", self.field) if p]
        return ": ".join([*parts, self.message])


class InvalidWorkflow(ValueError):
    """A manifest that must not run, with every problem found in it."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(p.describe(source) for p in problems))


def _suggest(name: str, known: Iterable[str]) -> str:
    import difflib  # only when a name is wrong: a valid file never needs it

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path that returns to its start, or None.

    Depth-first with an explicit stack: a chain of 1,000 nodes would pass the
    interpreter's recursion limit.
    """
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    for start in deps:
        if color[start] != white:
            continue
        path: list[str] = [start]
        pending: list[Iterator[str]] = [iter(deps.get(start, []))]
        color[start] = grey
        while pending:
            dep = next(pending[-1], None)
            if dep is None:
                color[path.pop()] = black
                pending.pop()
            elif dep not in color or color[dep] == black:
                continue
            elif color[dep] == grey:
                return [*path[path.index(dep) :], dep]
            else:
                color[dep] = grey
                path.append(dep)
                pending.append(iter(deps.get(dep, [])))
    return None


def topological_order(deps: dict[str, list[str]]) -> list[str]:
    """Kahn's order, stable with respect to declaration order (deps must be acyclic)."""
    indegree = {n: len(set(d)) for n, d in deps.items()}
    dependents: dict[str, list[str]] = {n: [] for n in deps}
    for name, ds in deps.items():
        for d in set(ds):
            dependents[d].append(name)
    ready = [n for n in deps if indegree[n] == 0]
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for child in dependents[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return order


def resolve_parameters(
    declared: dict[str, Any], given: dict[str, Any] | None
) -> tuple[dict[str, Any], list[Problem]]:
    """Declared defaults overlaid with given values; undeclared names are an error."""
    params = dict(declared)
    problems = []
    for key, value in (given or {}).items():
        if key not in declared:
            problems.append(
                Problem(
                    f"unknown parameter {key!r}{_suggest(key, declared)}; "
                    f"declared: {', '.join(sorted(declared)) or 'none'}",
                    field="parameters",
                )
            )
        params[key] = value
    return params, problems


class _Checker:
    """Collects problems while compiling one workflow."""

    def __init__(self, spec: WorkflowSpec, params: dict[str, Any]) -> None:
        self.spec = spec
        self.params = params
        self.problems: list[Problem] = []

    def add(self, message: str, node: str | None = None, field: str | None = None) -> None:
        self.problems.append(Problem(message, node, field))

    def compile(self, value: Any, node: str, field: str) -> Compiled:
        # Bounded before compiling: the compiler walks the value recursively.
        if (too_big := json_problem(value)) is not None:
            self.add(too_big, node, field)
            return None
        try:
            return compile_value(value)
        except ExpressionError as err:
            self.add(f"bad expression: {err}", node, field)
            return None

    def expression(self, source: str, node: str, field: str) -> Expression | None:
        try:
            return compile_expression(source)
        except ExpressionError as err:
            self.add(f"bad expression: {err}", node, field)
            return None

    def check_references(
        self,
        exprs: list[Expression],
        node: str,
        field: str,
        ancestors: frozenset[str],
        allow_item: bool,
    ) -> None:
        for expr in exprs:
            for ref in sorted(expr.node_refs):
                if ref not in {n.name for n in self.spec.nodes}:
                    names = [n.name for n in self.spec.nodes]
                    self.add(f"refers to unknown node {ref!r}{_suggest(ref, names)}", node, field)
                elif ref == node:
                    self.add("refers to its own node; use item/itemIndex or args", node, field)
                elif ref not in ancestors:
                    self.add(
                        f"refers to nodes.{ref}, which is not among its dependencies "
                        f"(add {ref!r} to dependsOn)",
                        node,
                        field,
                    )
            for ref in sorted(expr.param_refs - set(self.params)):
                self.add(
                    f"refers to params.{ref}, which is not declared in spec.parameters"
                    f"{_suggest(ref, self.params)}",
                    node,
                    field,
                )
            if node != self.spec.on_exit and (fields := exit_fields_in(expr)):
                read = ", ".join(f"workflow.{f}" for f in sorted(fields))
                self.add(f"reads {read}, which only the onExit node sees", node, field)
            if not allow_item and expr.variables & ITEM_VARIABLES:
                where = "outside a fan-out" if field not in ("when", "forEach") else f"in {field}"
                msg = f"uses item/itemIndex {where}; only a fan-out's args see them"
                self.add(msg, node, field)


def compile_workflow(
    spec: WorkflowSpec,
    meta: WorkflowMeta,
    parameters: dict[str, Any] | None = None,
    *,
    source: str | None = None,
) -> CompiledWorkflow:
    """Validate `spec` for a run with `parameters`; raise InvalidWorkflow naming every problem."""
    if spec.workflow_template_ref is not None or any(n.template_ref for n in spec.nodes):
        msg = "template references are resolved before compiling (core/templates.resolve_spec)"
        raise InvalidWorkflow([Problem(msg, field="templateRef")], source)
    params, param_problems = resolve_parameters(spec.parameters, parameters)
    check = _Checker(spec, params)
    check.problems.extend(param_problems)
    oversized = [
        Problem(too_big, field=where)
        for where, value in (("spec.parameters", spec.parameters), ("parameters", parameters))
        if (too_big := json_problem(value)) is not None
    ]
    if oversized:  # expressions would read them: stop before anything walks them
        raise InvalidWorkflow([*check.problems, *oversized], source)

    seen: set[str] = set()
    for node in spec.nodes:
        if node.name in seen:
            check.add("duplicate node name", node.name, "name")
        seen.add(node.name)
    names = [n.name for n in spec.nodes]

    deps: dict[str, list[str]] = {}
    for node in spec.nodes:
        ok = []
        for dep in node.depends_on:
            if dep == node.name:
                check.add("depends on itself", node.name, "dependsOn")
            elif dep not in seen:
                msg = f"unknown dependency {dep!r}{_suggest(dep, names)}"
                check.add(msg, node.name, "dependsOn")
            elif dep in ok:
                check.add(f"lists {dep!r} twice", node.name, "dependsOn")
            else:
                ok.append(dep)
        deps.setdefault(node.name, ok)

    if len(seen) != len(spec.nodes):
        raise InvalidWorkflow(check.problems, source)
    cycle = find_cycle(deps)
    if cycle:
        check.add(f"dependency cycle: {' -> '.join(cycle)}", cycle[0], "dependsOn")
        raise InvalidWorkflow(check.problems, source)

    _check_on_exit(check, deps)
    order = topological_order(deps)
    ancestors: dict[str, frozenset[str]] = {}
    for name in order:
        acc: set[str] = set()
        for dep in deps[name]:
            acc.add(dep)
            acc |= ancestors[dep]
        ancestors[name] = frozenset(acc)
    if spec.on_exit in ancestors:  # it runs last: every other node has ended by then
        ancestors[spec.on_exit] = frozenset(n for n in names if n != spec.on_exit)

    by_name = {n.name: n for n in spec.nodes}
    compiled: dict[str, CompiledNode] = {}
    for name in order:
        compiled[name] = _compile_node(check, by_name[name], deps, ancestors)

    if check.problems:
        raise InvalidWorkflow(check.problems, source)
    return CompiledWorkflow(
        meta=meta,
        spec=spec,
        params=params,
        nodes=compiled,
        order=tuple(order),
        parallelism=spec.parallelism,
        active_deadline_seconds=spec.active_deadline_seconds,
        on_exit=spec.on_exit,
    )


def _check_on_exit(check: _Checker, deps: dict[str, list[str]]) -> None:
    """`spec.onExit` names a node that has no dependsOn and that no node depends on."""
    exit_node = check.spec.on_exit
    if exit_node is None:
        return
    if exit_node not in deps:
        msg = f"names unknown node {exit_node!r}{_suggest(exit_node, deps)}"
        check.add(msg, field="onExit")
        return
    if deps[exit_node]:
        msg = "the onExit node runs after every other node; it takes no dependsOn"
        check.add(msg, exit_node, "dependsOn")
    handler = next(n for n in check.spec.nodes if n.name == exit_node)
    if handler.run_policy is not RunPolicy.ON_SUCCESS:
        msg = "the onExit node runs whatever happened; test workflow.status in `when` instead"
        check.add(msg, exit_node, "runPolicy")
    for name, ds in deps.items():
        if exit_node in ds:
            msg = f"depends on {exit_node!r}, the onExit node, which runs after every other node"
            check.add(msg, name, "dependsOn")


def _compile_node(
    check: _Checker,
    node: Node,
    deps: dict[str, list[str]],
    ancestors: dict[str, frozenset[str]],
) -> CompiledNode:
    name = node.name
    anc = ancestors[name]
    fan_out = node.for_each is not None or node.with_sequence is not None
    fan_out_field = "forEach" if node.with_sequence is None else "withSequence"
    pod = resolve_pod(node, check.spec)

    when = check.expression(node.when, name, "when") if node.when is not None else None
    if when:
        check.check_references([when], name, "when", anc, allow_item=False)

    for_each, sequence = _compile_fan_out(check, node, anc)

    default_args: dict[str, Any] | list[str] = {} if node.job is not None else []
    raw_args = node.workflow.parameters if node.workflow is not None else node.args
    args = check.compile(raw_args if raw_args is not None else default_args, name, "args")
    arg_exprs = expressions_in(args)
    check.check_references(arg_exprs, name, "args", anc, allow_item=fan_out)
    command = check.compile(node.command, name, "command") if node.command is not None else None
    check.check_references(expressions_in(command), name, "command", anc, allow_item=fan_out)

    env_values, env_refs = _compile_env(check, pod.env, name, anc, fan_out)
    for message, where in check_gate(node) + check_child(node):
        check.add(message, name, where)
    if node.item_arg is not None and node.job is None:
        check.add(
            "names an argument of a `job`; a command gets its item through ${{ item }} "
            "in command or args",
            name,
            "itemArg",
        )
    if fan_out and node.job is not None:
        if node.item_arg is None and not any(e.variables & ITEM_VARIABLES for e in arg_exprs):
            check.add(
                "the fan-out never passes its item to the job: set itemArg or use "
                "${{ item }} in args",
                name,
                fan_out_field,
            )
        if node.item_arg and isinstance(node.args, dict) and node.item_arg in node.args:
            check.add(f"{node.item_arg!r} is also given in args", name, "itemArg")

    memo_key = None
    if node.memoize is not None:
        memo_key = check.compile(node.memoize.key, name, "memoize.key")
        check.check_references(expressions_in(memo_key), name, "memoize.key", anc, False)
    retry_when = None
    if pod.retries.expression is not None:
        retry_when = _compile_retry_expression(check, pod.retries.expression, name)
    return CompiledNode(
        name=name,
        spec=node,
        deps=tuple(deps[name]),
        ancestors=anc,
        run_policy=node.run_policy,
        when=when,
        for_each=for_each,
        args=args,
        command=command,
        env_values=env_values,
        env_refs=tuple(env_refs),
        pod=pod,
        parallelism=node.parallelism,
        fail_fast=node.fail_fast,
        item_arg=node.item_arg,
        retry_when=retry_when,
        sequence=sequence,
        memo_key=memo_key,
    )


def _compile_fan_out(
    check: _Checker, node: Node, anc: frozenset[str]
) -> tuple[Compiled | None, Compiled | None]:
    """`forEach` compiled, and `withSequence` when its bounds are templates (a constant
    sequence becomes the literal list of its items, in the first place)."""
    name = node.name
    if node.with_sequence is not None:
        if node.for_each is not None:
            check.add("set either forEach or withSequence, not both", name, "withSequence")
        return _compile_sequence(check, node.with_sequence, name, anc)
    if isinstance(node.for_each, str) and (cut := json_problem(node.for_each)) is not None:
        check.add(cut, name, "forEach")  # a list the operator's decoder cut as too large
    elif isinstance(node.for_each, str):
        expr = check.expression(node.for_each, name, "forEach")
        if expr:
            check.check_references([expr], name, "forEach", anc, allow_item=False)
            if not expr.variables:
                _check_constant_list(check, expr, name)
        return expr, None
    elif isinstance(node.for_each, list):
        if not node.for_each:
            check.add("is an empty list: the node would never run a pod", name, "forEach")
        for_each = check.compile(node.for_each, name, "forEach")
        check.check_references(expressions_in(for_each), name, "forEach", anc, allow_item=False)
        return for_each, None
    return None, None


def _compile_sequence(
    check: _Checker, seq: WithSequence, name: str, anc: frozenset[str]
) -> tuple[Compiled | None, Compiled | None]:
    """A constant sequence as its items (refused above `MAX_FAN_OUT_ITEMS`), else compiled
    bounds for the planner; a literal `format` is checked either way."""
    bounds = seq.model_dump(exclude_none=True)
    compiled = check.compile(bounds, name, "withSequence")
    exprs = expressions_in(compiled)
    check.check_references(exprs, name, "withSequence", anc, allow_item=False)
    try:
        if isinstance(seq.format, str) and "${{" not in seq.format:
            check_format(seq.format)
        if exprs:
            return None, compiled
        items = sequence_items(bounds)
    except SequenceError as err:
        check.add(str(err), name, "withSequence")
        return None, None
    if not items:
        check.add("is empty: the node would never run a pod", name, "withSequence")
    return items, None


def _compile_retry_expression(check: _Checker, source: str, node: str) -> Expression | None:
    """`retries.expression` compiled against `lastRetry` only."""
    try:
        return compile_expression(source, names=RETRY_VARIABLES)
    except ExpressionError as err:
        check.add(f"bad expression: {err}", node, "retries.expression")
        return None


def _compile_env(
    check: _Checker, env: Iterable[EnvVar], name: str, anc: frozenset[str], fan_out: bool
) -> tuple[dict[str, Compiled], list[EnvVar]]:
    """Literal values compiled (templates checked); `valueFrom` entries kept as they are."""
    env_values: dict[str, Compiled] = {}
    env_refs: list[EnvVar] = []
    for var in env:
        if var.value_from is not None:
            if var.value is not None:
                check.add("set either value or valueFrom", name, f"env.{var.name}")
            env_refs.append(var)
            continue
        value = check.compile(var.value or "", name, f"env.{var.name}")
        check.check_references(
            expressions_in(value), name, f"env.{var.name}", anc, allow_item=fan_out
        )
        env_values[var.name] = value
    return env_values, env_refs


def _check_constant_list(check: _Checker, expr: Expression, node: str) -> None:
    try:
        value = expr.evaluate({})
    except ExpressionError as err:
        check.add(f"cannot be evaluated: {err}", node, "forEach")
        return
    if not isinstance(value, list):
        check.add(f"must yield a list, got {type(value).__name__}", node, "forEach")
    elif not value:
        check.add("is an empty list: the node would never run a pod", node, "forEach")
