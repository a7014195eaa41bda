"""`shoal run`'s fast path hands the executor what the models' path hands it.

The fast path (`shoal.fast_run`) compiles a plain Workflow over a view of the document
instead of pydantic models; the executor then reads the compiled workflow's nodes, specs
and pod settings. So the risk is a value read differently: a default missing, a number
of another type, an enum as text, a field the view cannot answer. Checked here
differentially, without running anything: for every manifest in the repository and a
corpus of mutations of a rich runnable one, whenever the fast path takes the file, every
field of the compiled workflow (each model field read through its attribute, as the
executor reads it) equals the models' path's, and the warnings printed are the same.
What it must leave to the models (gates, memos, locks, templates, child workflows, other
kinds, several documents, stdin, `--templates`, `--ui`) is listed and checked too; the
runs themselves are compared in tests/local/test_fast_run_outputs.py.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoal.api.model_view import FIELDS, ModelView
from shoal.cli import local_commands
from shoal.core.expressions import Expression
from shoal.core.validation import InvalidWorkflow
from shoal.fast_run import compile_for_run
from shoal_worker.records import Record, record_fields
from tests.unit.test_fast_validate import _mutations

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("tests/**/*.yaml")])

RUNNABLE: dict[str, Any] = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "runnable", "labels": {"team": "a"}, "namespace": "ns"},
    "spec": {
        "image": "worker:1",
        "parameters": {"count": 3, "names": ["a", "b"], "ratio": 0.5},
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
                "retries": {
                    "limit": 3,
                    "factor": 3,
                    "maxBackoffSeconds": 7,
                    "retryPolicy": "Always",
                },
            },
            {
                "name": "seq",
                "command": ["echo", "${{ item }}"],
                "dependsOn": ["first"],
                "withSequence": {"count": "${{ params.count }}", "format": "%02d"},
                "captureStdout": True,
                "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
            },
            {
                "name": "shell",
                "image": "alpine:3",
                "command": ["sh", "-c", "echo hi > /tmp/out"],
                "args": ["${{ params.ratio }}"],
                "outputs": {"out": {"path": "/tmp/out"}},
                "dependsOn": ["fan", "seq"],
                "runPolicy": "always",
                "timeoutSeconds": 5,
                "env": [
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "nodeSelector": {"disk": "ssd"},
                "serviceAccountName": "runner",
                "automountServiceAccountToken": True,
            },
            {"name": "report", "job": "report", "args": {"status": "${{ workflow.status }}"}},
        ],
    },
}


def _args(path: Path | str, **given: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "file": str(path),
        "name": None,
        "imports": [],
        "templates": [],
        "ui": False,
        "ui_keep": False,
        "param": [],
        "parameter_file": None,
    }
    return argparse.Namespace(**{**base, **given})


def _compile(args: argparse.Namespace, fast: bool) -> tuple[Any, str]:
    """The compiled workflow (None: the fast path declined; the InvalidWorkflow's problems
    when the models refuse) and what was printed on stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            if fast:
                found: Any = compile_for_run(args, {})
            else:
                found = local_commands._compile_with_models(args, {})
        except InvalidWorkflow as invalid:
            found = [p.describe(invalid.source) for p in invalid.problems]
    return found, err.getvalue()


def plain(value: Any) -> Any:
    """Every field as the executor reads it (models and views through their attributes),
    scalars with their type: the comparable form of a compiled workflow."""
    if isinstance(value, ModelView):
        return _model(value._model, value)  # the view's own model name
    if hasattr(type(value), "model_fields"):
        return _model(type(value).__name__, value)
    if isinstance(value, Expression):
        return ("Expression", value.source)
    if isinstance(value, Record):
        fields = {name: plain(getattr(value, name)) for name in record_fields(value)}
        return (type(value).__name__, fields)
    if isinstance(value, Enum):
        # the api/enums ones are compared by identity in the core, so the view makes them
        # too; the others (`gc`, `podGC`) are read by the operator only: text will do
        kind = type(value).__name__ if type(value).__module__ == "shoal.api.enums" else "str"
        return (kind, value.value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [plain(item) for item in value])
    if isinstance(value, frozenset | set):
        return ("set", sorted(value))
    return (type(value).__name__, value)


def _model(name: str, value: Any) -> Any:
    return (name, {attr: plain(getattr(value, attr)) for attr in FIELDS[name]})


def _judge(path: Path, **given: Any) -> bool:
    """Whether the fast path took `path`; when it did, the models compile it to the same
    workflow, field for field, with the same warnings."""
    fast, fast_err = _compile(_args(path, **given), fast=True)
    if fast is not None:
        models, models_err = _compile(_args(path, **given), fast=False)
        assert plain(fast) == plain(models)
        assert fast_err == models_err
    else:
        assert fast_err == ""  # nothing printed when it declines: the models print it all
    return fast is not None


def _write(tmp_path: Path, doc: Any, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=10**6), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_in_the_repository_compiles_the_same(path: Path) -> None:
    _judge(path)


def test_the_runnable_base_and_the_plain_examples_take_the_fast_path(tmp_path: Path) -> None:
    # Were they declined, the comparisons here would compare nothing.
    assert _judge(_write(tmp_path, RUNNABLE))
    taken = {p.name for p in MANIFESTS if p.parent.name == "examples" and _judge(p)}
    assert taken >= {"hello.yaml", "diamond.yaml", "shell.yaml", "sequence.yaml", "retry.yaml"}
    assert taken >= {"catalog.yaml", "coinflip.yaml", "failing.yaml", "exit-handlers.yaml"}


def test_no_mutation_of_a_runnable_manifest_compiles_otherwise(tmp_path: Path) -> None:
    taken = sum(_judge(_write(tmp_path, doc)) for doc in _mutations(RUNNABLE))
    assert taken > 100  # the comparison ran on many variants, not on the base alone


def test_yaml_surprises_are_warned_about_alike(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: w}\n"
        "spec:\n  parameters: {flag: yes, octal: 0755}\n"
        "  nodes:\n    - {name: a, command: [echo, '${{ params.flag }}']}\n"
    )
    assert _judge(path)
    _, printed = _compile(_args(path), fast=True)
    assert "value yes is read by kubectl as the boolean true" in printed
    assert printed.count("\n") == 2, printed  # one line per surprise


def test_a_chosen_name_must_match_the_only_document(tmp_path: Path) -> None:
    path = _write(tmp_path, RUNNABLE)
    assert _judge(path, name="runnable")
    assert not _judge(path, name="other")  # the models word "no document named"


LEFT_TO_THE_MODELS: dict[str, Any] = {
    "a gate": {"name": "gate", "suspend": {}, "dependsOn": ["first"]},
    "a memo": {"name": "m", "command": ["true"], "memoize": {"key": "k"}},
    "a lock": {"name": "l", "command": ["true"], "synchronization": {"mutexes": [{"name": "x"}]}},
    "a child": {"name": "c", "workflow": {"spec": {"nodes": [{"name": "x", "command": ["true"]}]}}},
    "a template": {"name": "t", "templateRef": {"name": "tpl", "node": "n"}},
}


@pytest.mark.parametrize("what", LEFT_TO_THE_MODELS)
def test_nodes_whose_run_needs_a_model_are_left_to_the_models(tmp_path: Path, what: str) -> None:
    doc = copy.deepcopy(RUNNABLE)
    doc["spec"]["nodes"].append(LEFT_TO_THE_MODELS[what])
    assert not _judge(_write(tmp_path, doc))


@pytest.mark.parametrize(
    "spec",
    [
        {"suspend": True},
        {"approvals": {"first": {"decision": "approved"}}},
        {"synchronization": {"mutexes": [{"name": "x"}]}},
        {"workflowTemplateRef": {"name": "tpl"}},
    ],
    ids=["suspend", "approvals", "synchronization", "workflowTemplateRef"],
)
def test_spec_fields_whose_run_needs_a_model_are_left_to_the_models(
    tmp_path: Path, spec: dict[str, Any]
) -> None:
    doc = copy.deepcopy(RUNNABLE)
    doc["spec"].update(spec)
    assert not _judge(_write(tmp_path, doc))


def test_other_kinds_several_documents_and_options_are_left_to_the_models(tmp_path: Path) -> None:
    cron = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "workflowSpec": RUNNABLE["spec"]},
    }
    assert not _judge(_write(tmp_path, cron, "cron.yaml"))
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump_all([RUNNABLE, {**RUNNABLE, "metadata": {"name": "b"}}]))
    assert not _judge(both)
    plain_file = _write(tmp_path, RUNNABLE)
    for option in ({"templates": ["t.yaml"]}, {"ui": True}, {"ui_keep": True}):
        assert compile_for_run(_args(plain_file, **option), {}) is None, option
    assert compile_for_run(_args("-"), {}) is None  # stdin: read once, by the models' path


def test_an_invalid_file_is_left_to_the_models_which_word_it(tmp_path: Path) -> None:
    doc = copy.deepcopy(RUNNABLE)
    doc["spec"]["nodes"][1]["dependsOn"] = ["nowhere"]
    path = _write(tmp_path, doc)
    fast, printed = _compile(_args(path), fast=True)
    assert (fast, printed) == (None, "")
    refused, _ = _compile(_args(path), fast=False)
    assert any("nowhere" in problem for problem in refused)


def test_a_job_module_that_cannot_be_imported_is_reported_as_by_the_models(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: w}\n"
        "spec:\n  parameters: {flag: yes}\n  nodes:\n    - {name: a, job: greet}\n"
    )
    (tmp_path / "broken_jobs.py").write_text("raise RuntimeError('no luck')\n")
    args = _args(path, imports=["broken_jobs"])
    assert _compile(args, fast=True) == _compile(args, fast=False)
    problems, printed = _compile(args, fast=True)
    assert "no luck" in problems[0]
    assert "value yes" in printed  # the warnings first, as on the models' path


def test_an_unknown_job_is_left_to_the_models_which_locate_it(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: w}\n"
        "spec:\n  nodes:\n    - {name: a, job: nope}\n"
    )
    (tmp_path / "fine_jobs.py").write_text(
        "from shoal_worker import job\n\n@job\ndef fast_run_probe() -> None:\n    pass\n"
    )
    args = _args(path, imports=["fine_jobs"])
    assert _compile(args, fast=True) == (None, "")
    problems, _ = _compile(args, fast=False)
    assert any("unknown job 'nope'" in problem for problem in problems)
