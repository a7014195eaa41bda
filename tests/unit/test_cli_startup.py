"""`shoal --help` and `shoal validate` load only what they use (issue 17: start-up).

Checked in a fresh interpreter, since this test process has imported everything long
ago: the command runs through `shoal.cli.main.main`, then the probe lists which heavy
packages ended up in `sys.modules`. Structural, not timed: bench/startup.py measures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shoal.cli.main import COMMANDS, Command, build_parser

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello.yaml"
HEAVY = (
    "kopf",
    "kubernetes",
    "httpx",
    "aiohttp",
    "asyncpg",
    "boto3",
    "prompt_toolkit",
    "rich",
    "shtab",
)
PROBE = """
import sys
from shoal.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
sys.stdout.flush()
modules = sorted(sys.modules)  # before the probe's own json
import json
print("\\n@probe " + json.dumps({"code": code, "modules": modules}))
"""


def run_probe(*argv: str) -> tuple[str, int, set[str]]:
    """The command's output, its exit code, and every module loaded by the end."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    output, _, report = done.stdout.rpartition("\n@probe ")
    found = json.loads(report)
    return output, found["code"], set(found["modules"])


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_help_lists_every_command_and_loads_no_command_module() -> None:
    output, code, modules = run_probe("--help")
    assert code == 0
    for command in COMMANDS:
        assert f"    {command.name}" in output, command.name
        assert command.summary.split()[0] in output
    assert sorted(top_level(modules) & set(HEAVY)) == []
    helpers = {"shoal.cli.main", "shoal.cli.help_width"}
    assert sorted(m for m in modules if m.startswith("shoal.cli.") and m not in helpers) == []
    assert "shoal.core.validation" not in modules
    assert "yaml" not in modules


def test_validate_loads_the_validator_but_no_client_executor_or_repl() -> None:
    output, code, modules = run_probe("validate", str(HELLO))
    assert code == 0
    assert output.strip() == f"{HELLO}: Workflow hello: valid (2 nodes)"
    assert sorted(top_level(modules) & set(HEAVY)) == []
    assert "shoal.core.validation" in modules  # it did validate
    # its expressions are bare paths (`params.name`): read without loading CEL at all
    assert "cel.cel" not in modules
    assert "shoal.local.executor" not in modules
    assert "shoal.kube.api" not in modules
    # nor the planner's decisions and state: dozens of dataclasses, a fifth of the start-up
    assert {"shoal.core.decisions", "shoal.core.state", "shoal.core.planner"} & modules == set()
    # nor pydantic (alone several times a bare interpreter's start-up): a valid file is
    # vouched for by the fast path (shoal.fast_validate), the models never load
    assert "pydantic" not in top_level(modules)
    assert "shoal.fast_validate" in modules
    assert "shoal.manifests" not in modules
    # nor what only an error, another command or a type checker needs (issue 17: each of
    # these is a measurable share of a valid file's check): records are plain classes
    # (shoal_worker/records.py), did-you-mean suggestions and JSON are loaded when needed
    assert sorted(modules & set(NOT_FOR_A_VALID_FILE)) == []


NOT_FOR_A_VALID_FILE = (
    "dataclasses",
    "inspect",
    "typing",
    "logging",
    "difflib",
    "pathlib",
    "urllib.parse",
    "json",
    "shutil",
    "shoal.job_check",
    "shoal.core.jsonbounds",
    "shoal.core.cel_runtime",
)
"""Modules `shoal validate` of a valid file with bare-path expressions does not load."""


def test_help_loads_neither_shutil_nor_typing() -> None:
    output, code, modules = run_probe("--help")
    assert code == 0
    assert "usage: shoal" in output
    assert sorted(modules & {"shutil", "typing", "dataclasses", "inspect"}) == []


def test_validate_compiles_other_expressions_with_cel_without_its_repl(tmp_path: Path) -> None:
    manifest = tmp_path / "when.yaml"
    manifest.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: x}\n"
        "spec:\n  parameters: {count: 2}\n  nodes:\n"
        "    - {name: a, job: j, when: 'params.count > 1'}\n"
    )
    output, code, modules = run_probe("validate", str(manifest))
    assert (output.strip(), code) == (f"{manifest}: Workflow x: valid (1 nodes)", 0)
    assert "cel.cel" in modules
    assert sorted(top_level(modules) & set(HEAVY)) == []


def test_validate_still_refuses_a_bad_expression(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: x}\n"
        "spec:\n  nodes:\n    - {name: a, job: j, when: '${{ params.x + }}'}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "shoal.cli.main", "validate", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert f"error: {bad}:6:25: node 'a': when: bad expression" in done.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_registered_command_configures_its_parser(
    command: Command, capsys: pytest.CaptureFixture[str]
) -> None:
    own = argparse.ArgumentParser(prog=f"shoal {command.name}")
    command.load().configure(own)
    assert own.description, f"{command.name}: its module sets no description"
    assert callable(own.get_default("handler")), f"{command.name}: its module sets no handler"
    for word in (command.name, *command.aliases):
        with pytest.raises(SystemExit) as exit:
            build_parser([word]).parse_args([word, "--help"])
        assert exit.value.code == 0
        shown = capsys.readouterr().out
        assert shown.startswith(f"usage: shoal {command.name} ")  # an alias shows the name
        assert " ".join(own.description.split()[:3]) in " ".join(shown.split())


MODELS_PROBE = """
import json, sys
from shoal.cli.main import main
code = main(sys.argv[1:])
from shoal.api.common import ObjectMeta
from shoal.api.cron import CronWorkflow
from shoal.api.workflow import Workflow
print("\\n@probe " + json.dumps({
    "code": code,
    "workflow": Workflow.__pydantic_complete__,
    "cron": CronWorkflow.__pydantic_complete__,
    "doc": ObjectMeta.model_fields["name"].description,
}))
"""


def test_validate_builds_only_the_models_it_uses_and_parses_no_docstrings() -> None:
    """The API models build their validators on first use and leave their field
    docstrings to the generated references: both cost every command's start-up. (A file
    with `synchronization` is judged by the models: the fast path leaves locks to them.)"""
    locks = HELLO.parent / "synchronization-mutex.yaml"
    done = subprocess.run(
        [sys.executable, "-c", MODELS_PROBE, "validate", str(locks)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(done.stdout.rpartition("\n@probe ")[2])
    assert found == {"code": 0, "workflow": True, "cron": False, "doc": None}


def test_the_generated_references_still_carry_field_docstrings() -> None:
    from shoal.api.common import EnvVar, ObjectMeta
    from shoal.api.field_docs import documented_schema, field_doc

    assert field_doc(ObjectMeta, "name") == "Object name. A DNS subdomain."
    schema = documented_schema(EnvVar)
    assert schema["properties"]["valueFrom"]["description"] == (
        "A reference instead of a literal value."
    )
    assert schema["$defs"]["KeyRef"]["properties"]["name"]["description"] == (
        "Secret or ConfigMap name, in the workflow's namespace."
    )


def test_a_plain_run_draws_its_table_without_rich(tmp_path: Path) -> None:
    """Plain output (`--plain`, a pipe, CI) is written as is: rich is for the live view,
    and its import and layout alone cost more than a 50-node chain of `true`."""
    manifest = tmp_path / "chain.yaml"
    manifest.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: chain}\n"
        "spec:\n  nodes:\n    - {name: first, command: ['true']}\n"
        "    - {name: second, command: [sh, -c, 'exit 3'], dependsOn: [first]}\n"
    )
    work = tmp_path / "work"
    output, code, modules = run_probe("run", "--plain", "--workdir", str(work), str(manifest))
    assert code == 1, output
    assert "rich" not in top_level(modules)
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith(" node "))
    assert lines[header].split("┃")[1].strip() == "phase"
    assert set(lines[header + 1]) == {"━", "╇"}
    assert [line.split("│")[1].strip() for line in lines[header + 2 : header + 4]] == [
        "Succeeded",
        "Failed",
    ]
    assert "second: Failed" in output
    assert lines[header + 4].startswith("workflow chain Failed in ")


def test_a_plain_run_of_a_chain_loads_no_pydantic(tmp_path: Path) -> None:
    """`shoal run` of a plain Workflow takes the fast path (shoal.fast_run): the file is
    compiled over a view of it and the models never load (issue 17: importing pydantic
    and building them cost more than a 50-node chain of `true`). The run still ends as
    it should: every node Succeeded, in order."""
    lines = ["apiVersion: shoal.dev/v1alpha1", "kind: Workflow", "metadata: {name: chain}"]
    lines += ["spec:", "  nodes:", "    - {name: n0, command: ['true']}"]
    lines += [f"    - {{name: n{i}, command: ['true'], dependsOn: [n{i - 1}]}}" for i in (1, 2)]
    manifest = tmp_path / "chain.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    work = tmp_path / "work"
    output, code, modules = run_probe("run", "--plain", "-q", "--workdir", str(work), str(manifest))
    assert code == 0, output
    assert "shoal.fast_run" in modules
    assert "pydantic" not in top_level(modules)
    assert {"shoal.manifests", "shoal.api.workflow", "shoal.api.common"} & modules == set()
    rows = [line.split("│") for line in output.splitlines() if "│" in line]
    assert [(row[0].strip(), row[1].strip()) for row in rows] == [
        ("n0", "Succeeded"),
        ("n1", "Succeeded"),
        ("n2", "Succeeded"),
    ]
    assert "workflow chain Succeeded in " in output


def test_a_run_the_fast_path_leaves_to_the_models_still_runs(tmp_path: Path) -> None:
    """A gate's run needs the models (its default is compared with an enum by identity):
    the fast path declines and the models' path runs it, the gate timing out to its
    default as documented."""
    manifest = tmp_path / "gate.yaml"
    manifest.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: gate}\n"
        "spec:\n  nodes:\n    - {name: wait, suspend: {timeoutSeconds: 0.1, default: approve}}\n"
        "    - {name: after, command: ['true'], dependsOn: [wait]}\n"
    )
    work = tmp_path / "work"
    output, code, modules = run_probe("run", "--plain", "-q", "--workdir", str(work), str(manifest))
    assert code == 0, output
    assert "shoal.manifests" in modules
    assert "pydantic" in top_level(modules)
    assert "workflow gate Succeeded in " in output
