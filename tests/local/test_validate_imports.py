"""`shoal validate --import MODULE` checks job names and arguments against the imported
jobs, and `shoal run --import` refuses the same manifest before it starts a process:
real `shoal` processes, the examples' own job module."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shoal.manifests import load_file
from tests.local.conftest import EXAMPLES, RUN_TIMEOUT, SHOAL

BAD = """\
apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata: {name: typos}
spec:
  nodes:
    - {name: hi, job: gret, args: {name: x}}
    - {name: two, job: greet, args: {name: x, greting: hey}}
"""


def shoal(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHOAL, *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=cwd,
        check=False,
    )


def test_validate_with_import_names_the_unknown_job_and_argument(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(BAD)
    (tmp_path / "jobs.py").write_text((EXAMPLES / "jobs.py").read_text())
    done = shoal(tmp_path, "validate", "wf.yaml", "--import", "jobs")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: wf.yaml:6:18: node 'hi': job: unknown job 'gret'; did you mean 'greet'? "
        "(jobs imported: add, check-row, data-proxy, explode, flaky, greet, integration, "
        "market-finder, multiply, print-records, publish, summarize, write-dataset)",
        "error: wf.yaml:7:47: node 'two': args.greting: unknown argument "
        "(did you mean 'greeting'? the job takes: name, greeting)",
    ]


def test_validate_without_import_does_not_look_at_jobs(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(BAD)
    done = shoal(tmp_path, "validate", "wf.yaml")
    assert done.returncode == 0, done.stderr
    assert "valid (2 nodes)" in done.stdout


def test_validate_names_a_module_that_cannot_be_imported(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(BAD)
    done = shoal(tmp_path, "validate", "wf.yaml", "--import", "no_such_jobs")
    assert done.returncode == 2
    assert "cannot import job module 'no_such_jobs'" in done.stderr


def test_run_refuses_before_starting_any_node(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(BAD)
    (tmp_path / "jobs.py").write_text((EXAMPLES / "jobs.py").read_text())
    workdir = tmp_path / "work"
    done = shoal(tmp_path, "run", "wf.yaml", "--import", "jobs", "--workdir", str(workdir))
    assert done.returncode == 2
    assert "unknown job 'gret'" in done.stderr
    assert "args.greting: unknown argument" in done.stderr
    assert not workdir.exists()  # nothing started: no attempt logs


def test_validate_with_import_accepts_every_example() -> None:
    examples = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    done = shoal(EXAMPLES, "validate", "--import", "jobs", *examples)
    assert done.returncode == 0, done.stderr
    documents = sum(len(load_file(p)) for p in examples)  # templates.yaml holds two
    assert done.stdout.count(": valid (") == documents
