"""`bench/startup.py --against TREE`, as docs/speed.md shows it: the `shoal run` cases run
from this checkout and from another source tree in the same run, and the ratio says how
a change moved start-up. The other tree's code must really be the one that runs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.local.test_doc_commands_run import shell, shown
from tests.unit.test_doc_commands import ROOT

PREFIX = ".venv/bin/python bench/startup.py --repeat 9 --against"


def copy_tree(target: Path) -> Path:
    """A source tree of shoal as `git archive` would unpack it (operator/, worker/)."""
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "operator" / "shoal", target / "operator" / "shoal", ignore=skip)
    shutil.copytree(
        ROOT / "worker" / "shoal_worker", target / "worker" / "shoal_worker", ignore=skip
    )
    return target


def small(command: str, tree: Path) -> str:
    """The documented command with the smallest numbers and `tree` for /tmp/shoal-main."""
    reduced = command.replace("--repeat 9", "--repeat 1 --chain 2")
    reduced = reduced.replace("/tmp/shoal-main", str(tree))
    assert reduced != command
    return reduced.replace(".venv/bin/python", sys.executable)


def test_the_startup_bench_compares_shoal_run_with_another_tree(tmp_path: Path) -> None:
    (command,) = shown("speed.md", PREFIX)
    tree = copy_tree(tmp_path / "shoal-main")
    done = shell(small(command, tree))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for label in ("shoal run: chain of 2 true", "shoal run: 1 node true"):
        assert any(line.startswith(f"{label} (shoal-main) ") for line in lines), label
        (compared,) = [line for line in lines if f"x {label} (shoal-main)" in line]
        assert compared.startswith(label)
        assert compared.rstrip().endswith(" ms)")
    assert any(
        line.startswith("shoal run: 1 node true") and "python -c pass" in line for line in lines
    )

    # the other tree is what runs: a tree whose CLI fails makes its cases fail
    (tree / "operator" / "shoal" / "cli" / "main.py").write_text(
        "def main(argv=None):\n    raise SystemExit(3)\n"
    )
    broken = shell(small(command, tree))
    assert broken.returncode != 0
    assert "(shoal-main): " in broken.stderr
    assert "failed" in broken.stderr


def test_a_tree_that_is_not_shoal_is_refused_by_name(tmp_path: Path) -> None:
    (command,) = shown("speed.md", PREFIX)
    done = shell(small(command, tmp_path))
    assert done.returncode != 0
    assert f"--against {tmp_path}: not a shoal source tree" in done.stderr
