"""`shoal validate`'s fast path never accepts what the models refuse, and prints the same.

The fast path (`shoal.fast_validate`: generated schema code, the shared node rules, the
semantic checker over a view of the document) may only say "valid"; everything else goes
to the pydantic path. So the risk is a false accept, hunted here differentially: over every
manifest in examples/ and tests/, and a corpus of mutations of rich valid manifests (each
field dropped, given a wrong type or a bad value, unknown keys, every model rule broken,
bad names, cycles, bad expressions, oversized values), whenever the fast path accepts,
`shoal validate` through the models must accept too, with the same output byte for byte.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.api import check_codegen
from shoal.api.model_view import FIELDS, ModelView, view_of
from shoal.api.workflow import Workflow
from shoal.cli import validate_command
from shoal.fast_validate import print_results, validate_fast
from shoal.yamlread import load_documents

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "operator" / "shoal" / "api" / "_generated_check.py"
MANIFESTS = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("tests/**/*.yaml")])

RICH: dict[str, Any] = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "rich", "labels": {"team": "a"}},
    "spec": {
        "image": "worker:1",
        "parameters": {"count": 3, "names": ["a", "b"]},
        "parallelism": 4,
        "activeDeadlineSeconds": 600,
        "defaults": {
            "env": [{"name": "MODE", "value": "${{ params.count }}"}],
            "retries": {"limit": 2, "backoffSeconds": 1, "expression": "lastRetry.exitCode == 1"},
            "timeoutSeconds": 60,
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
        },
        "artifacts": {"gc": "OnSuccess", "offloadBytes": 1024},
        "podGC": {"strategy": "OnPodSuccess"},
        "onExit": "report",
        "nodes": [
            {"name": "first", "job": "greet", "args": {"name": "${{ params.names[0] }}"}},
            {
                "name": "fan",
                "job": "greet",
                "dependsOn": ["first"],
                "forEach": "${{ params.names }}",
                "itemArg": "name",
                "parallelism": 2,
                "failFast": False,
                "when": "nodes.first.outputs.ok == true",
            },
            {
                "name": "seq",
                "command": ["echo", "${{ item }}"],
                "dependsOn": ["first"],
                "withSequence": {"count": 3, "format": "%02d"},
                "captureStdout": True,
                "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
                "memoize": {"key": "k-${{ params.count }}", "maxAge": "1h"},
            },
            {
                "name": "shell",
                "image": "alpine:3",
                "command": ["sh", "-c", "echo hi > /tmp/out"],
                "outputs": {"out": {"path": "/tmp/out"}},
                "dependsOn": ["fan", "seq"],
                "runPolicy": "always",
                "env": [
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                ],
                "nodeSelector": {"disk": "ssd"},
                "serviceAccountName": "runner",
            },
            {"name": "gate", "suspend": {"timeoutSeconds": 30}, "dependsOn": ["shell"]},
            {"name": "report", "job": "report", "args": {"status": "${{ workflow.status }}"}},
        ],
    },
}
PALETTE: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    10**9,
    "",
    "x",
    "Bad_Name",
    "a\n",
    "-a",
    "a" * 64,
    "${{ nodes. }}",
    "${{ params.nope }}",
    "${{ item }}",
    "${{ workflow.status }}",
    "${{ nodes.report.outputs.x }}",
    "y" * 70_000,
    [],
    ["first"],
    ["x", 1],
    {},
    {"unknownKey": 1},
]


def _validate(files: list[str], params: list[str], fast: bool) -> tuple[int, str, str]:
    """`shoal validate` in process: through the fast path first, or the models only."""
    args = argparse.Namespace(files=files, param=params, imports=[], templates=[])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if fast:
            code = validate_command.validate(args)
        else:
            code = validate_command._validate_with_models(
                args, validate_command.parse_params(params)
            )
    return code, out.getvalue(), err.getvalue()


def _judge(path: Path, params: list[str] | None = None) -> bool:
    """Whether the fast path accepted `path`; when it did, the models' verdict and every
    byte of output must be the same."""
    given = params or []
    results = validate_fast([str(path)], validate_command.parse_params(given))
    if results is not None:  # what `shoal validate` prints then (validate_command.validate)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            print_results(results)
        fast = (0, out.getvalue(), err.getvalue())
        assert fast == _validate([str(path)], given, fast=False)
    return results is not None


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and list index of a document, outermost first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


def _replace(doc: Any, path: tuple[Any, ...], value: Any, drop: bool = False) -> Any:
    changed = copy.deepcopy(doc)
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


def _mutations(base: dict[str, Any]) -> Iterator[Any]:
    """Each key dropped, each value replaced by a third of PALETTE (a different third from
    one path to the next, so each value meets every kind of field), an unknown key added to
    each mapping."""
    for index, path in enumerate(_paths(base)):
        yield _replace(base, path, None, drop=True)
        for value in PALETTE[index % 3 :: 3]:
            yield _replace(base, path, value)
    for path in [(), *_paths(base)]:
        target = base
        for part in path:
            target = target[part]
        if isinstance(target, dict):
            yield _replace(base, (*path, "dependOn"), ["first"]) if path else {**base, "x": 1}


def _write(tmp_path: Path, doc: Any, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=10**6), encoding="utf-8")
    return path


def test_the_rich_base_manifest_is_accepted_by_the_fast_path(tmp_path: Path) -> None:
    # The corpus below mutates it: were it refused, no mutation would test anything.
    assert _judge(_write(tmp_path, RICH))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_in_the_repository_reads_the_same(path: Path) -> None:
    _judge(path)


def test_plain_examples_take_the_fast_path() -> None:
    # The ones without templates, children or locks: the fast path is for them.
    for name in PLAIN_EXAMPLES:
        assert _judge(ROOT / "examples" / f"{name}.yaml"), name


def test_no_mutation_of_a_rich_manifest_is_accepted_where_the_models_refuse(
    tmp_path: Path,
) -> None:
    accepted = refused = 0
    for index, doc in enumerate(_mutations(RICH)):
        if _judge(_write(tmp_path, doc, f"m{index}.yaml")):
            accepted += 1
        else:
            refused += 1
    # Both verdicts occur: the corpus holds valid variants and broken ones.
    assert accepted > 100
    assert refused > 500


PLAIN_EXAMPLES = ("hello", "diamond", "dag-diamond", "coinflip", "retry", "sequence", "shell")
BASES = [
    RICH,
    *(yaml.safe_load((ROOT / "examples" / f"{n}.yaml").read_text()) for n in PLAIN_EXAMPLES),
]


@st.composite
def _several_mutations(draw: st.DrawFn) -> Any:
    """Two to four changes at once (drops and replacements) to the rich manifest or a plain
    example, applied in turn: rules that only break together (a fan-out dropped under its
    itemArg, a dependency renamed)."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(2, 4))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        try:
            if draw(st.booleans()):
                doc = _replace(doc, path, None, drop=True)
            else:
                doc = _replace(doc, path, draw(st.sampled_from(PALETTE)))
        except (KeyError, IndexError, TypeError):
            continue
    return doc


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=_several_mutations())
def test_several_mutations_at_once_are_judged_alike(tmp_path: Path, doc: Any) -> None:
    _judge(_write(tmp_path, doc))


RULE_BREAKERS: list[tuple[str, dict[str, Any]]] = [
    ("job and command", {"name": "a", "job": "j", "command": ["x"]}),
    ("no work", {"name": "a"}),
    ("job with list args", {"name": "a", "job": "j", "args": ["x"]}),
    ("command with dict args", {"name": "a", "command": ["x"], "args": {"k": 1}}),
    ("itemArg without fan-out", {"name": "a", "job": "j", "itemArg": "x"}),
    ("parallelism without fan-out", {"name": "a", "job": "j", "parallelism": 2}),
    ("captureStdout on a job", {"name": "a", "job": "j", "captureStdout": True}),
    ("outputs on a job", {"name": "a", "job": "j", "outputs": {"o": {"path": "/o"}}}),
    ("bad output name", {"name": "a", "command": ["x"], "outputs": {"1o": {"path": "/o"}}}),
    (
        "result captured twice",
        {
            "name": "a",
            "command": ["x"],
            "captureStdout": True,
            "outputs": {"result": {"path": "/o"}},
        },
    ),
    ("parameters without templateRef", {"name": "a", "job": "j", "parameters": {"p": 1}}),
    ("templateRef with job", {"name": "a", "job": "j", "templateRef": {"name": "t"}}),
    ("gate running a job", {"name": "a", "suspend": {}, "job": "j"}),
    ("empty forEach", {"name": "a", "job": "j", "forEach": [], "itemArg": "x"}),
    (
        "forEach and withSequence",
        {"name": "a", "job": "j", "forEach": [1], "withSequence": {"count": 2}, "itemArg": "x"},
    ),
    ("fan-out never passing its item", {"name": "a", "job": "j", "forEach": [1, 2]}),
    ("item outside a fan-out", {"name": "a", "job": "j", "args": {"x": "${{ item }}"}}),
    (
        "bad sequence format",
        {"name": "a", "command": ["x"], "withSequence": {"count": 2, "format": "%s"}},
    ),
    (
        "env value and valueFrom",
        {
            "name": "a",
            "job": "j",
            "env": [{"name": "E", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "p"}}}],
        },
    ),
    ("bad retry expression", {"name": "a", "job": "j", "retries": {"expression": "nodes.x"}}),
    ("constant forEach no list", {"name": "a", "job": "j", "forEach": "${{ 3 }}", "itemArg": "x"}),
    (
        "forEach over a scalar param",
        {"name": "a", "job": "j", "forEach": "${{ params.count }}", "itemArg": "x"},
    ),
    ("nan timeout", {"name": "a", "job": "j", "timeoutSeconds": float("nan")}),
    ("infinite timeout", {"name": "a", "job": "j", "timeoutSeconds": float("inf")}),
    ("timeout beyond a float", {"name": "a", "job": "j", "timeoutSeconds": 10**400}),
]
LAX: list[tuple[str, dict[str, Any]]] = [
    (
        "bool parallelism",
        {"name": "a", "job": "j", "forEach": [1], "itemArg": "x", "parallelism": True},
    ),
    ("numeric text timeout", {"name": "a", "job": "j", "timeoutSeconds": "30"}),
    ("snake_case key", {"name": "a", "job": "j", "depends_on": []}),
]
"""What pydantic's lax mode takes and the schema does not: the models accept them."""


@pytest.mark.parametrize(("what", "node"), RULE_BREAKERS, ids=[w for w, _ in RULE_BREAKERS])
def test_each_rule_broken_is_left_to_the_models(tmp_path: Path, what: str, node: Any) -> None:
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "w"},
        "spec": {"parameters": {"count": 3}, "nodes": [node]},
    }
    path = _write(tmp_path, doc)
    assert not _judge(path), what
    assert _validate([str(path)], [], fast=True)[0] == 2  # and the models refuse it


@pytest.mark.parametrize(("what", "node"), LAX, ids=[w for w, _ in LAX])
def test_lax_values_are_left_to_the_models_which_take_them(
    tmp_path: Path, what: str, node: Any
) -> None:
    doc = {"apiVersion": "shoal.dev/v1alpha1", "kind": "Workflow", "spec": {"nodes": [node]}}
    path = _write(tmp_path, doc)
    assert validate_fast([str(path)], {}) is None, what
    assert _validate([str(path)], [], fast=True)[0] == 0


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


SPEC_BREAKERS: list[tuple[str, dict[str, Any]]] = [
    ("no nodes", {"nodes": []}),
    ("nan deadline", {"activeDeadlineSeconds": float("nan"), "nodes": [{"name": "a", "job": "j"}]}),
    (
        "deadline beyond a float",
        {"activeDeadlineSeconds": 10**400, "nodes": [{"name": "a", "job": "j"}]},
    ),
    ("name with a newline", {"nodes": [{"name": "a\n", "job": "j"}]}),
    (
        "template and nodes",
        {"workflowTemplateRef": {"name": "t"}, "nodes": [{"name": "a", "job": "j"}]},
    ),
    (
        "cycle",
        {
            "nodes": [
                {"name": "a", "job": "j", "dependsOn": ["b"]},
                {"name": "b", "job": "j", "dependsOn": ["a"]},
            ]
        },
    ),
    ("self dependency", {"nodes": [{"name": "a", "job": "j", "dependsOn": ["a"]}]}),
    ("unknown dependency", {"nodes": [{"name": "a", "job": "j", "dependsOn": ["b"]}]}),
    ("duplicate names", {"nodes": [{"name": "a", "job": "j"}, {"name": "a", "job": "j"}]}),
    (
        "exit node with deps",
        {
            "onExit": "b",
            "nodes": [{"name": "a", "job": "j"}, {"name": "b", "job": "j", "dependsOn": ["a"]}],
        },
    ),
    ("unknown exit node", {"onExit": "z", "nodes": [{"name": "a", "job": "j"}]}),
    (
        "exit status outside onExit",
        {"nodes": [{"name": "a", "job": "j", "when": "workflow.status == 'x'"}]},
    ),
    (
        "reads a node it does not depend on",
        {
            "nodes": [
                {"name": "a", "job": "j"},
                {"name": "b", "job": "j", "args": {"x": "${{ nodes.a.outputs.y }}"}},
            ]
        },
    ),
    ("too many nodes", {"nodes": [{"name": f"n{i}", "job": "j"} for i in range(1001)]}),
    (
        "oversized parameters",
        {"parameters": {"p": "z" * 3_000_000}, "nodes": [{"name": "a", "job": "j"}]},
    ),
    (
        "parameters nested too deep",
        {"parameters": {"p": _nested(40)}, "nodes": [{"name": "a", "job": "j"}]},
    ),
    ("status", {"nodes": [{"name": "a", "job": "j"}], "_status": True}),
]


@pytest.mark.parametrize(("what", "spec"), SPEC_BREAKERS, ids=[w for w, _ in SPEC_BREAKERS])
def test_each_spec_problem_is_left_to_the_models(tmp_path: Path, what: str, spec: Any) -> None:
    spec = dict(spec)
    doc: dict[str, Any] = {"apiVersion": "shoal.dev/v1alpha1", "kind": "Workflow"}
    if spec.pop("_status", False):
        doc["status"] = {"phase": "Running"}
    doc["spec"] = spec
    assert not _judge(_write(tmp_path, doc)), what


def test_given_parameters_are_judged_alike(tmp_path: Path) -> None:
    hello = ROOT / "examples" / "hello.yaml"
    assert _judge(hello, ["name=Ada"])
    assert not _judge(hello, ["nope=1"])  # undeclared: the models word the error
    assert _validate([str(hello)], ["nope=1"], fast=True)[0] == 2


def test_what_the_fast_path_cannot_judge_gets_the_models_exact_error(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: w}\nspec:\n"
        "  nodes:\n    - name: publish\n      job: j\n      retries:\n        limit: 1000\n",
        encoding="utf-8",
    )
    assert validate_fast([str(path)], {}) is None
    code, out, err = _validate([str(path)], [], fast=True)
    assert (code, out) == (2, "")
    assert err == (
        f"error: {path}:9:9: node 'publish': retries.limit: "
        "Input should be less than or equal to 100\n"
    )


def test_a_file_mixing_kinds_goes_wholly_to_the_models(tmp_path: Path) -> None:
    hello = (ROOT / "examples" / "hello.yaml").read_text(encoding="utf-8")
    cron = (ROOT / "tests" / "cluster" / "admission" / "valid.yaml").read_text(encoding="utf-8")
    both = tmp_path / "both.yaml"
    both.write_text(hello + "\n---\n" + cron.replace("kind: Workflow", "kind: CronWorkflow"))
    assert validate_fast([str(both)], {}) is None


def test_yaml_surprises_are_warned_about_alike(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: w}\nspec:\n"
        "  parameters: {flag: yes, mode: 0755}\n  nodes:\n    - {name: a, job: j}\n",
        encoding="utf-8",
    )
    assert _judge(path)
    assert "kubectl" in _validate([str(path)], [], fast=True)[2]


def _same(view: Any, model: Any, where: str) -> None:
    if isinstance(view, ModelView):
        for attr in FIELDS[view._model]:
            _same(getattr(view, attr), getattr(model, attr), f"{where}.{attr}")
    elif isinstance(view, list):
        assert isinstance(model, list), where
        assert len(view) == len(model), where
        for index, (a, b) in enumerate(zip(view, model, strict=True)):
            _same(a, b, f"{where}[{index}]")
    elif isinstance(view, dict) and any(isinstance(v, ModelView) for v in view.values()):
        assert view.keys() == model.keys(), where
        for key in view:
            _same(view[key], model[key], f"{where}.{key}")
    else:
        assert view == model, where
        if isinstance(model, float | int) and not isinstance(model, bool):
            assert type(view) is type(model), where


def test_the_view_reads_every_field_as_the_models_do(tmp_path: Path) -> None:
    docs = [RICH, *(d.raw for p in MANIFESTS for d in load_documents(p.read_text(), str(p)))]
    compared = 0
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "Workflow" or "status" in doc:
            continue
        try:
            model = Workflow.model_validate(doc)
        except ValueError:
            continue
        _same(view_of(doc), model, "workflow")
        compared += 1
    assert compared >= 10


def test_the_generated_check_is_fresh() -> None:
    # Regenerate with `make crds` after changing a model of the Workflow kind.
    assert GENERATED.read_text(encoding="utf-8") == check_codegen.generate()


def test_the_generated_check_imports_neither_pydantic_nor_fastjsonschema() -> None:
    text = GENERATED.read_text(encoding="utf-8")
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import re"]


@pytest.mark.parametrize(
    "value", ["!!float .nan", "!!float -.inf", "1e400", "!!int 100000000000000000000000000"]
)
@pytest.mark.parametrize("field", ["activeDeadlineSeconds", "parallelism"])
def test_numbers_beyond_json_are_left_to_the_models(tmp_path: Path, field: str, value: str) -> None:
    # YAML can spell NaN, infinity and huge integers where JSON cannot; the schema's bounds
    # would let NaN pass where pydantic's refuse it.
    path = tmp_path / "wf.yaml"
    path.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: w}\n"
        f"spec:\n  {field}: {value}\n  nodes:\n    - {{name: a, job: j}}\n",
        encoding="utf-8",
    )
    assert validate_fast([str(path)], {}) is None
    assert not _judge(path)
