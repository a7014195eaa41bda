"""Every shell command shown to users (README.md, docs/*.md, the chart's NOTES.txt) is run
by a named test, or listed here with the reason it cannot be run on a test machine.

A command added to the docs without a test, a registered test that was renamed or deleted,
and a registry entry that no longer matches any documented command all fail this test,
so the docs and the tests that keep them honest move together.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELL_FENCES = ("sh", "bash", "shell", "console")
NOT_RUN = "not run: "

# Command prefix (as documented, whitespace collapsed) -> the test that runs it, or
# "not run: why". The longest matching prefix wins.
DOC_COMMANDS: dict[str, str] = {
    # -- local: run verbatim by tests/local/test_doc_commands_run.py ----------------------
    ".venv/bin/shoal validate examples/*.yaml": (
        "tests/local/test_doc_commands_run.py::test_readme_local_commands_run_verbatim"
    ),
    ".venv/bin/shoal run --import jobs": (
        "tests/local/test_doc_commands_run.py::test_readme_local_commands_run_verbatim"
    ),
    "shoal run --import jobs examples/memoize.yaml": (
        "tests/local/test_local_sync.py::"
        "test_the_memoize_doc_command_runs_verbatim_and_hits_the_second_time"
    ),
    "shoal run --import jobs examples/artifacts.yaml": (
        "tests/local/test_doc_commands_run.py::test_artifacts_doc_command_runs_verbatim"
    ),
    'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN "\'{"type":"output","key":"total"': (
        "tests/local/test_doc_commands_run.py::test_readme_echo_line_is_an_output_in_a_run"
    ),
    'eval "$(shoal completion bash)"': (
        "tests/local/test_doc_commands_run.py::test_completion_commands_run_verbatim"
    ),
    "shoal completion ": (
        "tests/local/test_doc_commands_run.py::test_completion_commands_run_verbatim"
    ),
    "shoal-worker run --job shoal.echo": (
        "tests/local/test_doc_commands_run.py::test_worker_commands_run_verbatim"
    ),
    "SHOAL_IMPORT=acme_jobs.markets": (
        "tests/local/test_doc_commands_run.py::test_worker_commands_run_verbatim"
    ),
    ".venv/bin/python bench/startup.py": (
        "tests/local/test_doc_commands_run.py::test_startup_bench_runs_verbatim"
    ),
    ".venv/bin/python bench/startup.py --repeat 9 --against": (
        "tests/local/test_bench_startup.py::"
        "test_the_startup_bench_compares_shoal_run_with_another_tree"
    ),
    ".venv/bin/python bench/local.py --quick": (
        "tests/local/test_bench_local.py::"
        "test_the_local_bench_prints_the_fan_out_and_chain_targets_with_their_ratios"
    ),
    ".venv/bin/python bench/local_parent.py": (
        "tests/local/test_bench_local_parent.py::"
        "test_the_parent_bench_prints_both_runners_and_their_ratio_per_case"
    ),
    "python examples/catalog_sdk.py": (
        "tests/local/test_sdk_local.py::test_the_documented_script_runs_the_catalog_locally"
    ),
    "make demo ": "tests/local/test_demo.py::test_make_demo_in_a_fresh_copy",
    "shoal run --ui ": "tests/local/test_run_ui.py::test_ui_on_an_example_stops_with_the_run",
    ".venv/bin/python bench/ui_browser.py": (
        "tests/cluster/test_ui.py::test_bench_ui_browser_prints_time_to_interactive"
    ),
    "SHOAL_UPDATE_SCREENSHOTS=1 .venv/bin/pytest -q tests/cluster/test_ui.py": (
        "tests/cluster/test_ui.py::test_log_in_watch_a_run_live_and_stop_it"
    ),
    "shoal run examples/templates.yaml": (
        "tests/local/test_doc_commands_run.py::test_templates_doc_local_commands_run_verbatim"
    ),
    "shoal template lint examples/templates.yaml": (
        "tests/local/test_doc_commands_run.py::test_templates_doc_local_commands_run_verbatim"
    ),
    "shoal run --templates examples/templates.yaml": (
        "tests/local/test_templates_local.py::"
        "test_a_workflow_template_ref_runs_the_templates_dag_with_its_parameters"
    ),
    "shoal validate --templates examples/": (
        "tests/local/test_templates_local.py::test_a_folder_of_templates_is_read_too"
    ),
    "shoal template ": (
        "tests/cluster/test_templates_cluster.py::"
        "test_a_deleted_template_fails_a_new_submission_with_its_name"
    ),
    # -- make targets: each exists (dry run here); CI runs them through `make test` -------
    "make ": "tests/unit/test_doc_commands.py::test_documented_make_targets_exist",
    # -- the test control plane (tests/cluster, by node id) -------------------------------
    "shoal list -n": "tests/cluster/test_cli.py::test_submit_watch_then_get_and_list",
    "shoal get shell -n": "tests/cluster/test_cli.py::test_submit_watch_then_get_and_list",
    "$ kubectl apply -f cycle.yaml": (
        "tests/cluster/test_admission.py::"
        "test_apply_refuses_what_shoal_validate_refuses_with_the_same_message"
    ),
    "$ shoal validate cycle.yaml": (
        "tests/local/test_doc_commands_run.py::test_admission_doc_validate_prints_what_the_doc_shows"
    ),
    "$ kubectl apply -f examples/catalog.yaml": (
        "tests/cluster/test_doc_commands_cluster.py::"
        "test_operator_doc_apply_and_get_workflows_print_what_the_doc_shows"
    ),
    "$ kubectl get workflows": (
        "tests/cluster/test_doc_commands_cluster.py::"
        "test_operator_doc_apply_and_get_workflows_print_what_the_doc_shows"
    ),
    "$ kubectl get cronworkflows": (
        "tests/cluster/test_doc_commands_cluster.py::"
        "test_cron_doc_get_cronworkflows_and_its_runs_print_what_the_doc_shows"
    ),
    "$ kubectl get workflows -l shoal.dev/cron-workflow=heartbeat": (
        "tests/cluster/test_doc_commands_cluster.py::"
        "test_cron_doc_get_cronworkflows_and_its_runs_print_what_the_doc_shows"
    ),
    "name=$(shoal submit -o name": (
        "tests/cluster/test_cli.py::test_invalid_manifest_exits_2_and_creates_nothing"
    ),
    'shoal logs -f "$name"': "tests/cluster/test_cli.py::test_logs_and_follow",
    'shoal get "$name" -o json': "tests/cluster/test_cli.py::test_submit_watch_then_get_and_list",
    "shoal submit --watch --timeout 3600 report.yaml || shoal retry": (
        "tests/cluster/test_cli.py::test_retry_reruns_only_what_failed"
    ),
    "shoal get nightly --node integration --failed": (
        "tests/cluster/test_archive.py::test_own_operator_get_and_resubmit_a_run_whose_workflow_is_gone"
    ),
    "shoal resubmit nightly-report -p": (
        "tests/cluster/test_archive.py::test_own_operator_get_and_resubmit_a_run_whose_workflow_is_gone"
    ),
    "shoal trigger nightly -n team": (
        "tests/cluster/test_cron_trigger.py::"
        "test_trigger_with_a_key_runs_once_and_without_a_key_every_time"
    ),
    "kubectl get nodes": (
        "tests/cluster/test_doc_commands_cluster.py::test_testing_doc_get_nodes_shows_two_ready_nodes"
    ),
    "kubectl create job hello": (
        "tests/cluster/test_controlplane.py::test_job_completes_and_logs_stream_with_follow"
    ),
    "kubectl logs -f job/hello": (
        "tests/cluster/test_controlplane.py::test_job_completes_and_logs_stream_with_follow"
    ),
    "kubectl create namespace shoal": (
        "tests/cluster/test_chart.py::"
        "test_own_operator_from_the_chart_runs_a_workflow_with_only_its_service_account"
    ),
    "kubectl -n shoal create secret generic shoal-database": (
        "tests/cluster/test_chart.py::"
        "test_own_operator_from_the_chart_runs_a_workflow_with_only_its_service_account"
    ),
    "kubectl -n {{ .Release.Namespace }} rollout status": (
        "tests/cluster/test_chart.py::"
        "test_own_operator_from_the_chart_runs_a_workflow_with_only_its_service_account"
    ),
    'kubectl -n {{ include "shoal.roleNamespaces" . | splitList "," | first }} get workflows': (
        "tests/cluster/test_doc_commands_cluster.py::"
        "test_operator_doc_apply_and_get_workflows_print_what_the_doc_shows"
    ),
    "$ shoal submit examples/hello.yaml -p name=Ada --watch": (
        "tests/cluster/test_cli.py::test_submit_watch_then_get_and_list"
    ),
    "$ shoal ls": "tests/cluster/test_cli.py::test_submit_watch_then_get_and_list",
    "$ shoal get flaky": "tests/cluster/test_cli.py::test_retry_reruns_only_what_failed",
    "$ shoal retry flaky --watch": "tests/cluster/test_cli.py::test_retry_reruns_only_what_failed",
    "$ shoal cron list": "tests/cluster/test_cli.py::test_cron_list_suspend_resume_and_context",
    "$ shoal get report": (
        "tests/cluster/test_archive.py::"
        "test_own_operator_get_and_resubmit_a_run_whose_workflow_is_gone"
    ),
    "$ shoal resubmit report -p name=Ada": (
        "tests/cluster/test_archive.py::"
        "test_own_operator_get_and_resubmit_a_run_whose_workflow_is_gone"
    ),
    "$ shoal resume release": (
        "tests/cluster/test_gates_cluster.py::"
        "test_own_operator_a_gate_waits_survives_an_operator_restart_and_continues_on_resume"
    ),
    "$ shoal suspend nightly": (
        "tests/cluster/test_gates_cluster.py::test_own_operator_suspend_holds_back_the_next_node_until_resume"
    ),
    "$ shoal resume nightly": (
        "tests/cluster/test_gates_cluster.py::test_own_operator_suspend_holds_back_the_next_node_until_resume"
    ),
    "$ shoal run release.yaml --workdir": (
        "tests/local/test_local_gates.py::test_a_gate_waits_until_resumed_from_another_process"
    ),
    "shoal resume --local": (
        "tests/local/test_local_gates.py::test_a_gate_waits_until_resumed_from_another_process"
    ),
    # -- allowlist: what a test machine cannot run, and why -------------------------------
    "hack/kind-up.sh": NOT_RUN + "needs kind and docker (test_kind_scripts checks the script)",
    "hack/kind-down.sh": NOT_RUN + "needs kind and docker (test_kind_scripts checks the script)",
    "docker build": NOT_RUN + "needs docker (test_dockerfiles lints and checks the Dockerfiles)",
    "kubectl -n shoal create secret generic shoal-artifacts": (
        NOT_RUN + "needs real S3 credentials; the chart test creates its own artifact Secret"
    ),
    "helm install shoal helm/shoal -n shoal --set replicas=3": (
        "tests/cluster/test_chart_sharding.py::"
        "test_replicas_above_one_render_sharded_replicas_with_lease_rbac"
    ),
    ".venv/bin/python bench/cluster.py": (
        NOT_RUN + "a benchmark of several minutes on the test control plane; "
        "tests/cluster/test_live_jobs.py and test_pod_gc.py run the same fan-out path"
    ),
    ".venv/bin/python bench/throughput.py": (
        NOT_RUN + "a benchmark of several minutes on the test control plane; "
        "tests/cluster/test_own_operator_sharding.py runs the same sharded operators"
    ),
    "helm install shoal helm/shoal -n shoal": (
        NOT_RUN + "pulls registry.example.com images; test_chart renders the chart with "
        "these values and applies it to the test control plane"
    ),
    'kubectl -n {{ include "shoal.roleNamespaces" . | splitList "," | first }} apply -f https:': (
        NOT_RUN + "downloads a released tag from GitHub; examples/shell.yaml is applied "
        "by tests/cluster/test_operator.py::test_example_via_kubectl_apply"
    ),
}


@dataclass(frozen=True)
class DocCommand:
    """One command as shown: where, and the text (continuation lines joined)."""

    source: str
    line: int
    text: str


def _doc_files() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "helm" / "shoal" / "templates" / "NOTES.txt",
    ]


def _markdown_commands(path: Path) -> list[DocCommand]:
    found: list[DocCommand] = []
    fence: str | None = None
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip()
            continue
        if fence is None:
            continue
        if pending is not None:
            start, text = pending
            text = f"{text} {stripped.rstrip(chr(92)).strip()}"
            pending = (start, text) if stripped.endswith("\\") else None
            if pending is None:
                found.append(DocCommand(path.name, start, text))
            continue
        if stripped.startswith("$ "):
            command = stripped  # a prompt: the rest of a console block is output
        elif fence in SHELL_FENCES and fence != "console" and stripped:
            command = stripped
        else:
            continue
        if command.startswith("#"):
            continue
        if command.endswith("\\"):
            pending = (number, command.rstrip("\\").strip())
        else:
            found.append(DocCommand(path.name, number, command))
    return found


_NOTES_COMMAND = re.compile(r"^\s{3,}(kubectl|shoal|helm)\s")


def _notes_commands(path: Path) -> list[DocCommand]:
    return [
        DocCommand(path.name, number, line.strip())
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _NOTES_COMMAND.match(line)
    ]


def doc_commands() -> list[DocCommand]:
    """Every command line the docs show."""
    found: list[DocCommand] = []
    for path in _doc_files():
        found += _notes_commands(path) if path.suffix == ".txt" else _markdown_commands(path)
    return found


def _normal(text: str) -> str:
    return " ".join(text.split())


def registered(command: str) -> str | None:
    """The registry key that covers `command` (the longest matching prefix), or None."""
    text = _normal(command)
    keys = [key for key in DOC_COMMANDS if text.startswith(_normal(key))]
    return max(keys, key=len) if keys else None


PROTOCOL_SCRIPTS = (
    "tests/unit/test_worker_process.py::"
    "test_the_shell_examples_in_docs_protocol_md_work_as_documented"
)
"""Runs each shell block of docs/protocol.md whole, as a job's script (it unpacks exactly
the blocks there are, so a block added there fails it until it is run too)."""
SCRIPT_FILES = {"protocol.md": PROTOCOL_SCRIPTS}


def test_the_docs_show_commands_from_every_file_kind() -> None:
    sources = {c.source for c in doc_commands()}
    assert {"README.md", "NOTES.txt", "cli.md", "protocol.md", "packaging.md"} <= sources


def test_commands_are_read_as_a_shell_reads_them(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```sh\n# a comment\nshoal run a.yaml \\\n  -p x=1   # trailing\n```\n"
        "```console\n$ shoal ls\nNAME  PHASE\n```\n"
        "```text\nshoal run [--import MODULE]... FILE\n```\n"
        "```yaml\nkind: Workflow\n```\n"
    )
    found = [(c.line, c.text) for c in _markdown_commands(doc)]
    assert found == [(3, "shoal run a.yaml -p x=1   # trailing"), (7, "$ shoal ls")]
    assert registered("shoal completion fish > f") == "shoal completion "
    assert registered("shoal frobnicate") is None


def test_every_documented_command_is_registered() -> None:
    missing = [
        f"{c.source}:{c.line}: {c.text}"
        for c in doc_commands()
        if c.source not in SCRIPT_FILES and registered(c.text) is None
    ]
    assert missing == [], "documented commands with no test (add one to DOC_COMMANDS)"


def test_every_registry_entry_is_shown_in_the_docs() -> None:
    used = {registered(c.text) for c in doc_commands() if c.source not in SCRIPT_FILES}
    assert sorted(set(DOC_COMMANDS) - used) == []


def _test_exists(node_id: str) -> bool:
    path, _, name = node_id.partition("::")
    file = ROOT / path
    if not file.is_file():
        return False
    pattern = rf"^(async )?def {re.escape(name.split('[')[0])}\("
    return re.search(pattern, file.read_text(encoding="utf-8"), re.MULTILINE) is not None


def test_every_registered_test_exists_and_every_exception_says_why() -> None:
    targets = {*DOC_COMMANDS.values(), *SCRIPT_FILES.values()}
    runs = [t for t in targets if not t.startswith(NOT_RUN)]
    assert [t for t in runs if not _test_exists(t)] == []
    reasons = [t for t in targets if t.startswith(NOT_RUN)]
    assert all(len(t) > len(NOT_RUN) + 20 for t in reasons)
    assert len(reasons) <= 10, "keep the allowlist short: write the test instead"


def _make_targets() -> list[str]:
    targets = {c.text.split()[1] for c in doc_commands() if registered(c.text) == "make "}
    return sorted(targets)


@pytest.mark.parametrize("target", _make_targets())
def test_documented_make_targets_exist(target: str) -> None:
    """`make -n` expands the target's recipe without running it: a renamed or removed
    target fails here (`make test`, which runs the others, is what CI runs: .ci/run)."""
    done = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
