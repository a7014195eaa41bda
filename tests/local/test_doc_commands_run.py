"""The local commands the docs show, run as shown (through a shell, from the repository
root, the text taken from the doc itself), so a doc that drifts from the CLI fails here.
tests/unit/test_doc_commands.py checks that every documented command has such a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shoal.manifests import load_file
from tests.local.conftest import RUN_TIMEOUT, SHOAL
from tests.unit.test_doc_commands import ROOT, doc_commands

VENV_BIN = Path(sys.executable).parent


def shown(source: str, prefix: str) -> list[str]:
    """The commands of one doc file that start with `prefix`, as written there."""
    found = [c.text for c in doc_commands() if c.source == source and c.text.startswith(prefix)]
    assert found, f"{source} no longer shows {prefix!r}"
    return found


def shell(
    command: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`command` under bash, with this interpreter's `shoal` and `shoal-worker` first on PATH."""
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env={**os.environ, "PATH": path, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def test_readme_local_commands_run_verbatim() -> None:
    commands = shown("README.md", ".venv/bin/shoal ")
    assert len(commands) == 3
    for command in commands:
        done = shell(command)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        if " -o json " in command:
            assert json.loads(done.stdout)["phase"] == "Succeeded"
        if " validate " in command:  # one line per document (templates.yaml holds two)
            documents = sum(len(load_file(p)) for p in (ROOT / "examples").glob("*.yaml"))
            assert done.stdout.count(": valid (") == documents


def test_templates_doc_local_commands_run_verbatim() -> None:
    (run,) = shown("templates.md", "shoal run examples/")
    done = shell(run)
    assert done.returncode == 0, done.stderr
    assert "HELLO, SHOAL! / hello, ada." in done.stdout  # the summary node's result
    (lint,) = shown("templates.md", "shoal template lint ")
    done = shell(lint)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "examples/templates.yaml: WorkflowTemplate greeting: valid (2 nodes)\n"


def test_artifacts_doc_command_runs_verbatim() -> None:
    (command,) = shown("artifacts.md", "shoal run ")
    done = shell(command)
    assert done.returncode == 0, done.stderr
    assert "artifacts: file://" in done.stdout  # the local store under the run's workdir


def test_readme_echo_line_is_an_output_in_a_run(tmp_path: Path) -> None:
    (line,) = shown("README.md", "echo ")
    manifest = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "echoed"},
        "spec": {"nodes": [{"name": "count", "command": ["sh", "-c", line]}]},
    }
    (tmp_path / "wf.yaml").write_text(json.dumps(manifest))
    done = subprocess.run(
        [*SHOAL, "run", "-o", "json", "--plain", "wf.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["nodes"]["count"]["outputs"] == {"total": 3}


def test_completion_commands_run_verbatim(tmp_path: Path) -> None:
    (bash_line,) = shown("cli.md", 'eval "$(shoal completion bash)"')
    done = shell(f"{bash_line}\ncomplete -p shoal")
    assert done.returncode == 0, done.stderr
    assert "shoal" in done.stdout
    (tmp_path / ".zfunc").mkdir()
    (tmp_path / ".config" / "fish" / "completions").mkdir(parents=True)
    for line in shown("cli.md", "shoal completion "):
        done = shell(line, cwd=tmp_path, env={"HOME": str(tmp_path)})
        assert done.returncode == 0, f"{line}\n{done.stderr}"
    assert "#compdef shoal" in (tmp_path / ".zfunc" / "_shoal").read_text()
    fish = tmp_path / ".config" / "fish" / "completions" / "shoal.fish"
    assert "complete -c shoal" in fish.read_text()


def test_worker_commands_run_verbatim(tmp_path: Path) -> None:
    token = {"SHOAL_PROTOCOL_TOKEN": "0123456789abcdef0123456789abcdef"}
    (run_line,) = shown("worker.md", "shoal-worker run --job shoal.echo")
    termination = tmp_path / "t"
    done = shell(run_line.replace("/tmp/t", str(termination)), cwd=tmp_path, env=token)
    assert done.returncode == 0, done.stderr
    assert '"outputs":{"region":"eu-west"}' in termination.read_text()

    (env_line,) = shown("worker.md", "SHOAL_IMPORT=acme_jobs.markets")
    package = tmp_path / "acme_jobs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "markets.py").write_text(
        "from shoal_worker import job\n\n\n"
        '@job("market-finder")\n'
        "def find(region: str) -> dict[str, list[str]]:\n"
        '    return {"markets": [region + "-1"]}\n'
    )
    done = shell(env_line, cwd=tmp_path, env={**token, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert '"eu-1"' in done.stdout


def test_startup_bench_runs_verbatim() -> None:
    (command,) = shown("cli.md", ".venv/bin/python bench/startup.py")
    # The documented defaults take minutes on a busy machine: the same script and flags,
    # with the smallest numbers.
    small = command.replace("--repeat 7", "--repeat 1").replace("--chain 50", "--chain 2")
    assert small != command
    done = shell(small.replace(".venv/bin/python", sys.executable))
    assert done.returncode == 0, done.stderr
    assert "shoal validate examples/hello.yaml" in done.stdout
    assert "shoal run: chain of 2 true" in done.stdout


def test_admission_doc_validate_prints_what_the_doc_shows() -> None:
    """docs/admission.md's session, on the cycle the admission tests apply with kubectl."""
    text = (ROOT / "docs" / "admission.md").read_text(encoding="utf-8")
    session = text.split("```console\n", 1)[1].split("```", 1)[0].splitlines()
    (index,) = [i for i, line in enumerate(session) if line.startswith("$ shoal validate ")]
    command, printed = session[index][2:], session[index + 1]
    done = shell(command, cwd=ROOT / "tests" / "cluster" / "admission")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [printed]
