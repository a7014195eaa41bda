"""SDK workflows run on this machine through `shoal run`, with the jobs' modules imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shoal.sdk import Workflow
from tests.local.conftest import EXAMPLES, RUN_TIMEOUT
from tests.local.test_examples import _records

pytestmark = pytest.mark.local


def catalog() -> Workflow:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import catalog_sdk
    finally:
        sys.path.remove(str(EXAMPLES))
    workflow: Workflow = catalog_sdk.workflow
    return workflow


def test_the_catalog_in_code_runs_to_succeeded_with_its_retry(tmp_path: Path) -> None:
    result = catalog().run_local({"markets": 3}, workdir=tmp_path)
    assert (result.phase, result.exit_code, result.succeeded) == ("Succeeded", 0, True)
    nodes = result.status["nodes"]
    markets = ["eu-west-1", "eu-west-2", "eu-west-3"]
    assert nodes["markets"]["outputs"]["market_ids"] == markets
    assert nodes["integration"]["items"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert nodes["integration"]["attempts"] == 4  # eu-west-3's first attempt is retried
    assert nodes["publish"]["outputs"] == {"published": sum(_records(m) for m in markets)}
    assert nodes["alert-empty"]["phase"] == "Skipped"
    assert nodes["notify"]["phase"] == "Succeeded"
    assert (tmp_path / "manifest.yaml").read_text() == catalog().to_yaml()


def test_a_failing_job_ends_the_local_run_failed(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from jobs import explode
    finally:
        sys.path.remove(str(EXAMPLES))
    wf = Workflow("sdk-failing", image="img:1")
    wf.job("boom", explode, reason="on purpose")
    result = wf.run_local(workdir=tmp_path)
    assert (result.phase, result.exit_code) == ("Failed", 1)
    assert "on purpose" in result.status["nodes"]["boom"]["message"]


def test_the_documented_script_runs_the_catalog_locally() -> None:
    # docs/sdk.md: `python examples/catalog_sdk.py --run`
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "catalog_sdk.py"), "--run"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "Succeeded"


SCRIPT = """
import sys

from shoal.sdk import Workflow
from shoal_worker import Context, job


@job("sdk-script-double")
def double(ctx: Context, n: int) -> dict[str, int]:
    return {"twice": 2 * n}


wf = Workflow("sdk-script", image="img:1")
first = wf.job("first", double, n=4)
wf.job("second", double, n=first.outputs["twice"])

if __name__ == "__main__":
    result = wf.run_local()
    print(result.status["nodes"]["second"]["outputs"]["twice"])
    sys.exit(result.exit_code)
"""


def test_a_script_that_defines_its_own_jobs_runs_them_locally(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "16"
