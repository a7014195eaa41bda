"""`make test`'s report and budget (hack/suite.py): what a developer reads at the end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shoal_suite", REPO / "hack" / "suite.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["shoal_suite"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.cluster.test_a" name="test_fast" time="1.5"/>
<testcase classname="tests.cluster.test_a" name="test_slow[x]" time="300.25"/>
<testcase classname="tests.cluster.test_b" name="test_broken" time="2">
  <failure message="assert 1 == 2">boom</failure></testcase>
<testcase classname="tests.cluster.test_b" name="test_off" time="0">
  <skipped message="no chromium"/></testcase>
</testsuite></testsuites>
"""


def outcomes(suite: ModuleType, tmp_path: Path, ok: bool = True) -> list[object]:
    report = tmp_path / "cluster.xml"
    report.write_text(JUNIT)
    counts, cases = suite.read_junit(report)
    step = suite.Step("cluster", ("test-cluster-shared",), "cluster.xml")
    return [
        suite.Outcome(suite.Step("venv", ("venv",)), 26.0, True),
        suite.Outcome(step, 400.0, ok, counts, cases),
    ]


def test_the_report_gives_each_step_the_slowest_tests_and_one_closing_count(
    suite: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = suite.report(outcomes(suite, tmp_path, ok=False), 426.0, 45.0)
    out = capsys.readouterr().out
    assert code == 1  # a step failed
    assert "7m06s of a 45-minute budget" in out
    table = out.split("budget\n")[1].split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in table}
    assert rows["venv"] == ["0m26s", "ok"]
    assert " ".join(rows["cluster"]) == "6m40s FAILED 2 passed, 1 failed, 1 skipped"
    slowest = out.split("slowest tests")[1].splitlines()[1:3]
    assert slowest[0].split() == ["300.2s", "tests/cluster/test_a.py::test_slow[x]"]
    assert slowest[1].split() == ["2.0s", "tests/cluster/test_b.py::test_broken"]
    assert "Failed steps: cluster" in out
    assert out.rstrip().splitlines()[-1] == "suite: 2 passed, 1 failed, 1 skipped"


def test_a_run_over_its_budget_fails_and_says_what_to_do(
    suite: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert suite.report(outcomes(suite, tmp_path), 426.0, 45.0) == 0
    capsys.readouterr()
    assert suite.report(outcomes(suite, tmp_path), 426.0, 7.0) == 1
    out = capsys.readouterr().out
    assert "took 7m06s, over its budget of 7 minutes (SHOAL_TEST_BUDGET_MINUTES)" in out
    assert "make test-scale" in out


def test_the_budget_comes_from_the_environment(
    suite: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOAL_TEST_BUDGET_MINUTES", raising=False)
    assert suite.budget_minutes() == 45.0
    monkeypatch.setenv("SHOAL_TEST_BUDGET_MINUTES", "60")
    assert suite.budget_minutes() == 60.0
    monkeypatch.setenv("SHOAL_TEST_BUDGET_MINUTES", "soon")
    with pytest.raises(SystemExit, match="not a number of minutes"):
        suite.budget_minutes()


def test_a_missing_report_counts_nothing(suite: ModuleType, tmp_path: Path) -> None:
    counts, cases = suite.read_junit(tmp_path / "absent.xml")
    assert (counts.passed, counts.failed, counts.skipped, cases) == (0, 0, 0, [])
