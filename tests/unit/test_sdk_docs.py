"""docs/sdk.md shows what runs: its Python example builds the manifest it claims, and each
command it shows is one the tests run."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from shoal.manifests import load_file
from shoal.sdk import Workflow
from tests.local.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "sdk.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_python_example_builds_the_diamond_example() -> None:
    (source,) = blocks("python")
    scope: dict[str, object] = {}
    sys.path.insert(0, str(EXAMPLES))
    try:
        exec(compile(source, str(DOC), "exec"), scope)
    finally:
        sys.path.remove(str(EXAMPLES))
    wf = scope["wf"]
    assert isinstance(wf, Workflow)
    assert wf.build() == load_file(EXAMPLES / "diamond.yaml")[0].resource


def test_every_command_shown_is_run_by_a_test() -> None:
    commands = [line.split("#")[0].strip() for block in blocks("sh") for line in block.splitlines()]
    tests = "".join(
        (ROOT / "tests" / tier / name).read_text(encoding="utf-8")
        for tier, name in (("unit", "test_sdk_render.py"), ("local", "test_sdk_local.py"))
    )
    assert commands
    for command in commands:
        assert f"# docs/sdk.md: `{command}`" in tests, command
