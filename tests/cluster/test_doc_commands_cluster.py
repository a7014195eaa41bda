"""The kubectl sessions the docs show, run on the test control plane with the text taken
from the doc, and the printed table compared with what the doc prints."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

from tests.cluster.conftest import REPO, load_manifest, wait_until, wait_workflow
from tests.support.plugin import Kubectl
from tests.unit.test_doc_commands import doc_commands

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]


def console_session(doc: str) -> list[tuple[str, list[str]]]:
    """The first console block of docs/`doc`: each `$ ` command with the lines it prints."""
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    block = text.split("```console\n", 1)[1].split("```", 1)[0]
    session: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            session.append((line[2:], []))
        else:
            session[-1][1].append(line)
    return session


def kubectl_args(command: str) -> list[str]:
    """The arguments after `kubectl`, with the repository's relative paths made absolute."""
    words = shlex.split(command.split("#")[0])
    assert words[0] == "kubectl", command
    return [str(REPO / w) if w.startswith("examples/") else w for w in words[1:]]


def test_operator_doc_apply_and_get_workflows_print_what_the_doc_shows(
    kubectl: Kubectl, k8s_api: Any, namespace: str
) -> None:
    (apply, _), (get, printed) = console_session("operator.md")
    kubectl(*kubectl_args(apply), namespace=namespace)
    name = load_manifest(REPO / "examples" / "catalog.yaml")["metadata"]["name"]
    wait_workflow(k8s_api, namespace, name, timeout=120)
    shown = kubectl(*kubectl_args(get), namespace=namespace).stdout.splitlines()
    assert shown[0].split() == printed[0].split()  # NAME PHASE PROGRESS AGE
    # Name, phase and progress as documented; the age is whatever it is.
    assert shown[1].split()[:3] == printed[1].split()[:3]


def test_testing_doc_get_nodes_shows_two_ready_nodes(kubectl: Kubectl) -> None:
    (command,) = [c.text for c in doc_commands() if c.text.startswith("kubectl get nodes")]
    assert "two Ready nodes" in command
    rows = kubectl(*kubectl_args(command)).stdout.splitlines()[1:]
    assert [row.split()[1] for row in rows] == ["Ready", "Ready"]


def columns(row: str) -> list[str]:
    """A kubectl table row's cells (cells are two or more spaces apart)."""
    return re.split(r"\s{2,}", row.strip())


def test_cron_doc_get_cronworkflows_and_its_runs_print_what_the_doc_shows(
    kubectl: Kubectl, namespace: str
) -> None:
    text = (REPO / "docs" / "cron.md").read_text(encoding="utf-8")
    manifest = text.split("```console\n", 1)[0].rsplit("```yaml\n", 1)[1].split("```")[0]
    kubectl("apply", "-f", "-", namespace=namespace, stdin=manifest)
    (get_crons, crons_printed), (get_runs, runs_printed) = console_session("cron.md")

    def runs() -> list[str]:
        return kubectl(*kubectl_args(get_runs), namespace=namespace).stdout.split()

    wait_until(lambda: len(runs()) >= 2, timeout=20, what="two heartbeat runs")
    pattern = re.compile(r"workflow\.shoal\.dev/heartbeat-\d{10}")
    assert all(pattern.fullmatch(line) for line in runs_printed)
    assert all(pattern.fullmatch(name) for name in runs())
    shown = kubectl(*kubectl_args(get_crons), namespace=namespace).stdout.splitlines()
    assert shown[0].split() == crons_printed[0].split()
    # Name and schedule as documented, and the same cells filled (SUSPEND is blank when
    # unset, LAST is an age, NEXT a time); the times are whatever they are.
    row, documented = columns(shown[1]), columns(crons_printed[1])
    assert row[:2] == documented[:2]
    assert len(row) == len(documented)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[3])
