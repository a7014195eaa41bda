"""Expressions and `${{ }}` templates, evaluated with CEL (never Python `eval`).

CEL is the language Kubernetes itself uses for validation rules: side-effect free, always
terminating, and well known to people who write manifests. An expression sees:

- `params`: the workflow's parameters,
- `nodes`: `nodes.<name>.outputs` and `nodes.<name>.phase` of the node's ancestors
  (`-` is minus in CEL: write `nodes.data_proxy` or `nodes["data-proxy"]` for the node
  `data-proxy`; node names never hold `_`, so the `_` spelling always means one node),
- `item` and `itemIndex`: the current fan-out element (fan-out nodes only),
- `workflow`: `workflow.name`, `workflow.namespace`, `workflow.uid`; the exit handler
  (`spec.onExit`) also sees `workflow.status`, `workflow.failures` and `workflow.duration`.

A node's `retries.expression` sees only `lastRetry` (`RETRY_VARIABLES`).

A string that is exactly one template (`"${{ params.ids }}"`) keeps the expression's type;
templates inside a longer string are interpolated as text.
"""

from __future__ import annotations

import re

from shoal.api.limits import (
    EXPRESSION_TIMEOUT_SECONDS,
    MAX_COMPREHENSION_NESTING,
    MAX_EXPRESSION_LENGTH,
    MAX_EXPRESSION_NESTING,
)
from shoal.core.bare_paths import LazyProgram, bare_path
from shoal.core.lazy_re import LazyPattern
from shoal_worker.records import Record

TYPE_CHECKING = False  # `typing` (and `dataclasses`) would cost `shoal validate`
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

VARIABLES = frozenset({"params", "nodes", "item", "itemIndex", "workflow"})
ITEM_VARIABLES = frozenset({"item", "itemIndex"})
RETRY_VARIABLES = frozenset({"lastRetry"})
EXIT_FIELDS = frozenset({"status", "failures", "duration"})
"""`workflow` fields only the exit handler sees (core/exit_handler.py)."""

_TEMPLATE = LazyPattern(r"\$\{\{(.*?)\}\}", re.DOTALL)
_WHOLE_TEMPLATE = LazyPattern(r"^\s*\$\{\{(.*?)\}\}\s*$", re.DOTALL)
_NODE_DOT = LazyPattern(r"\bnodes\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_NODE_INDEX = LazyPattern(r"\bnodes\s*\[\s*(['\"])(.*?)\1\s*\]")
_NODE_ANY = LazyPattern(r"\bnodes\b")
_PARAM_DOT = LazyPattern(r"\bparams\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_PARAM_INDEX = LazyPattern(r"\bparams\s*\[\s*(['\"])(.*?)\1\s*\]")
_HYPHENATED_NODE = LazyPattern(r"\bnodes\s*\.\s*([A-Za-z_][A-Za-z0-9_]*(?:\s*-\s*[A-Za-z0-9_]+)+)")
_STRING_LITERAL = LazyPattern(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# Variables bound by CEL's comprehension macros: `ids.filter(i, i > 2)` binds `i`.
_MACRO_BINDING = LazyPattern(
    r"\.\s*(?:all|exists|exists_one|existsOne|map|filter|transformList|transformMap)"
    r"\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,(?:\s*([A-Za-z_][A-Za-z0-9_]*)\s*,)?"
)
# A call of a macro that iterates; matched anywhere, string literals included, so that no
# spelling evades the time budget (a false match only costs a trip to the sandbox).
_MACRO_CALL = LazyPattern(
    r"\.\s*(?:all|exists|exists_one|existsOne|map|filter|transformList|transformMap|"
    r"transformMapEntry|sortBy)\s*\("
)
_OPEN, _CLOSE = "([{", ")]}"
_WORKFLOW_FIELD = LazyPattern(
    r"\bworkflow\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\])"
)


def exit_fields_in(expr: Expression) -> frozenset[str]:
    """The exit-handler-only `workflow` fields `expr` reads (`workflow.status`, ...)."""
    found = {a or b for a, b in _WORKFLOW_FIELD.findall(expr.source)}
    return frozenset(found & EXIT_FIELDS)


class ExpressionError(ValueError):
    """An expression that does not compile, or fails when evaluated."""


class Expression(Record):
    """A compiled CEL expression and what it refers to.

    - `node_refs`: node names the expression reads statically (`nodes.a`, `nodes["a-b"]`).
    - `dynamic_nodes`: True when `nodes` is indexed by a computed key, so every node may
      be read.
    - `iterates`: True when it calls a comprehension macro: evaluated under the time budget.
    - `node_spellings`: (`data_proxy`, `data-proxy`): nodes read as `nodes.<name with _
      for ->`.
    """

    source: str
    program: Any
    variables: frozenset[str]
    node_refs: frozenset[str]
    dynamic_nodes: bool
    param_refs: frozenset[str]
    iterates: bool = False
    node_spellings: tuple[tuple[str, str], ...] = ()

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """Evaluate against `context`, passing only what the expression reads.

        Passing only the referenced variables and nodes keeps a 100,000-item fan-out
        linear: an item's args never drag every upstream output list across into CEL.
        """
        scope: dict[str, Any] = {}
        for name in self.variables:
            if name not in context:
                continue
            value = context[name]
            if name == "nodes":
                value = self._nodes_scope(value)
            scope[name] = value
        if self.iterates:
            return self._evaluate_budgeted(scope)
        try:
            return self.program.execute(scope)
        except KeyError as err:
            key = err.args[0] if err.args else "?"
            raise ExpressionError(f"{self.source!r}: no such key {key!r}") from None
        except Exception as err:  # the CEL runtime raises assorted built-in types
            raise ExpressionError(f"{self.source!r}: {err}") from None

    def _nodes_scope(self, nodes: Mapping[str, Any]) -> Mapping[str, Any]:
        """The nodes the expression reads, each also under its `_` spelling if used so."""
        if self.dynamic_nodes and not self.node_spellings:
            return nodes
        scope = dict(nodes) if self.dynamic_nodes else {}
        if not self.dynamic_nodes:
            scope.update((n, nodes[n]) for n in self.node_refs if n in nodes)
        scope.update((spelled, nodes[n]) for spelled, n in self.node_spellings if n in nodes)
        return scope

    def _evaluate_budgeted(self, scope: dict[str, Any]) -> Any:
        # Imported on first use: the sandbox brings subprocess, pickle and multiprocessing,
        # which `shoal validate` and most runs (no iterating expression) never need.
        from shoal.core.sandbox import SANDBOX, BudgetExceeded, EvaluationFailed

        try:
            return SANDBOX.evaluate(self.source, scope, EXPRESSION_TIMEOUT_SECONDS)
        except BudgetExceeded:
            raise ExpressionError(
                f"{_excerpt(self.source)}: evaluation exceeded the time budget of "
                f"{EXPRESSION_TIMEOUT_SECONDS:g}s for an expression (see docs/expressions.md)"
            ) from None
        except EvaluationFailed as err:
            if err.missing_key is not None:
                msg = f"{self.source!r}: no such key {err.missing_key!r}"
                raise ExpressionError(msg) from None
            raise ExpressionError(f"{self.source!r}: {err}") from None


def _excerpt(text: str, limit: int = 120) -> str:
    """An expression quoted for a message, shortened: messages land in status and Events."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def check_structure(text: str) -> None:
    """Refuse an expression before it is parsed or run if it exceeds a static limit.

    Bracket nesting bounds the parser's recursion; comprehension nesting bounds the work,
    which grows as the product of the sizes of the nested lists. Scanned in one pass,
    skipping string literals.
    """
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long (limit {MAX_EXPRESSION_LENGTH})"
        )
    macro_starts = {m.end() - 1 for m in _MACRO_CALL.finditer(text)}
    stack: list[bool] = []  # one entry per open bracket: does it open a macro call?
    macros = deepest = 0
    quote: str | None = None
    i = 0
    while i < len(text):
        char = text[i]
        if quote is not None:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            is_macro = i in macro_starts
            stack.append(is_macro)
            macros += is_macro
            if len(stack) > MAX_EXPRESSION_NESTING:
                raise ExpressionError(
                    f"{_excerpt(text)}: brackets nest deeper than {MAX_EXPRESSION_NESTING} "
                    f"levels (limit {MAX_EXPRESSION_NESTING})"
                )
            deepest = max(deepest, macros)
        elif char in _CLOSE and stack:
            macros -= stack.pop()
        i += 1
    if deepest > MAX_COMPREHENSION_NESTING:
        raise ExpressionError(
            f"{_excerpt(text)}: comprehension macros (all, exists, map, filter, ...) nest "
            f"{deepest} deep (limit {MAX_COMPREHENSION_NESTING}); the work grows as the "
            "product of the nested lists' sizes"
        )


def compile_expression(source: str, *, names: frozenset[str] = VARIABLES) -> Expression:
    """Compile `source` (optionally wrapped in `${{ }}`) or raise ExpressionError.

    `names` are the variables it may read: a workflow's by default; other callers (a
    CronWorkflow's poll condition sees only `response`) pass their own.
    """
    whole = _WHOLE_TEMPLATE.match(source)
    text = (whole.group(1) if whole else source).strip()
    if not text:
        raise ExpressionError("empty expression")
    path = bare_path(text, names, MAX_EXPRESSION_LENGTH)
    if path is not None:  # no CEL needed to know what it reads (core/bare_paths.py)
        return Expression(
            source=text,
            program=LazyProgram(text, path.root),
            variables=frozenset({path.root}),
            node_refs=path.node_refs,
            dynamic_nodes=path.dynamic_nodes,
            param_refs=path.param_refs,
            node_spellings=path.spellings,
        )
    return compile_with_cel(text, names)


def compile_with_cel(text: str, names: frozenset[str] = VARIABLES) -> Expression:
    """`compile_expression` of a stripped, unwrapped `text`, by CEL itself."""
    from shoal.core.cel_runtime import cel

    check_structure(text)
    _refuse_hyphenated_node(text)
    try:
        program = cel.compile(text)
    except Exception as err:
        raise ExpressionError(str(err).replace("\n", " ")) from None
    bound = {name for pair in _MACRO_BINDING.findall(text) for name in pair if name}
    variables = frozenset(program.variables()) - bound
    unknown = sorted(variables - names)
    if unknown:
        raise ExpressionError(
            f"{text!r}: unknown name {', '.join(repr(u) for u in unknown)}; "
            f"expressions can use {', '.join(sorted(names))}"
        )
    spelled = set(_NODE_DOT.findall(text))
    spellings = tuple(sorted((s, s.replace("_", "-")) for s in spelled if "_" in s))
    dotted = {s.replace("_", "-") for s in spelled}
    indexed = {m[1] for m in _NODE_INDEX.findall(text)}
    uses = len(_NODE_ANY.findall(text))
    node_refs = frozenset(dotted | indexed)
    dynamic = "nodes" in variables and uses > len(_NODE_DOT.findall(text)) + len(
        _NODE_INDEX.findall(text)
    )
    params = set(_PARAM_DOT.findall(text)) | {m[1] for m in _PARAM_INDEX.findall(text)}
    return Expression(
        source=text,
        program=program,
        variables=variables,
        node_refs=node_refs,
        dynamic_nodes=dynamic,
        param_refs=frozenset(params),
        iterates=_MACRO_CALL.search(text) is not None,
        node_spellings=spellings,
    )


def _refuse_hyphenated_node(text: str) -> None:
    """`nodes.flip-coin` parses as `nodes.flip - coin`: a subtraction from a node's map,
    never meaningful, and silent when `coin` happens to be a variable or a number. Refused
    with the two spellings that work (string literals are not looked into)."""
    match = _HYPHENATED_NODE.search(_STRING_LITERAL.sub('""', text))
    if match is None:
        return
    name = re.sub(r"\s+", "", match.group(1))
    raise ExpressionError(
        f"{_excerpt(text)}: `nodes.{name}` reads as a subtraction, since `-` is minus in "
        f"CEL; write nodes['{name}'] or nodes.{name.replace('-', '_')}"
    )


class Interpolation(Record):
    """A string with templates inside it; renders to a string."""

    parts: tuple[str | Expression, ...]


if TYPE_CHECKING:
    Compiled = Any
    """A compiled value tree: constants, Expression, Interpolation, or lists/dicts of them."""
else:
    Compiled = object  # an alias for annotations only: `typing` stays unloaded


class _Dynamic(Record):
    """Marks a list or dict that contains at least one template."""

    value: list[Any] | dict[str, Any]


def compile_value(value: Any) -> Compiled:
    """Compile every template in a JSON-like value; raise ExpressionError on a bad one."""
    if isinstance(value, str):
        if "${{" not in value:
            return value
        whole = _WHOLE_TEMPLATE.match(value)
        if whole and "${{" not in whole.group(1):
            return compile_expression(whole.group(1))
        parts: list[str | Expression] = []
        pos = 0
        for match in _TEMPLATE.finditer(value):
            if match.start() > pos:
                parts.append(value[pos : match.start()])
            parts.append(compile_expression(match.group(1)))
            pos = match.end()
        if pos < len(value):
            parts.append(value[pos:])
        if any("${{" in p for p in parts if isinstance(p, str)):
            raise ExpressionError(f"unclosed template in {value!r}")
        return Interpolation(tuple(parts))
    if isinstance(value, list):
        items = [compile_value(v) for v in value]
        return _Dynamic(items) if any(_is_dynamic(v) for v in items) else value
    if isinstance(value, dict):
        entries = {k: compile_value(v) for k, v in value.items()}
        return _Dynamic(entries) if any(_is_dynamic(v) for v in entries.values()) else value
    return value


def _is_dynamic(value: Compiled) -> bool:
    return isinstance(value, Expression | Interpolation | _Dynamic)


def expressions_in(compiled: Compiled) -> list[Expression]:
    """Every expression inside a compiled value, for static checks."""
    if isinstance(compiled, Expression):
        return [compiled]
    if isinstance(compiled, Interpolation):
        return [p for p in compiled.parts if isinstance(p, Expression)]
    if isinstance(compiled, _Dynamic):
        inner = compiled.value.values() if isinstance(compiled.value, dict) else compiled.value
        return [e for v in inner for e in expressions_in(v)]
    return []


def render(compiled: Compiled, context: Mapping[str, Any]) -> Any:
    """Evaluate a compiled value tree; raise ExpressionError naming the failing expression."""
    if isinstance(compiled, Expression):
        return compiled.evaluate(context)
    if isinstance(compiled, Interpolation):
        return "".join(
            p if isinstance(p, str) else to_text(p.evaluate(context)) for p in compiled.parts
        )
    if isinstance(compiled, _Dynamic):
        if isinstance(compiled.value, dict):
            return {k: render(v, context) for k, v in compiled.value.items()}
        return [render(v, context) for v in compiled.value]
    return compiled


def to_text(value: Any) -> str:
    """How a value appears inside a string: text as is, everything else as JSON."""
    if isinstance(value, str):
        return value
    import json  # here: `shoal validate` never renders

    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
