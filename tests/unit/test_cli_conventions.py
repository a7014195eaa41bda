"""The CLI conventions users bring from kubectl and argo (issue 16 item 7), as far as
they need no API server; tests/cluster/test_cli.py runs the rest against a real one."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoal.cli import (
    common,
    cron_admin_command,
    delete_command,
    get_command,
    list_command,
    local_commands,
    logs_command,
    wait_command,
)
from shoal.cli.main import EXIT_BROKEN_PIPE, main, parse

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello.yaml"
SHOAL = [sys.executable, "-m", "shoal.cli.main"]


def shoal(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHOAL, *argv], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


class FakeApi:
    """Records requests; answers GETs from `listing` and DELETEs from `existing`."""

    def __init__(self, listing: list[dict[str, Any]] | None = None) -> None:
        self.listing = listing or []
        self.existing = {o["metadata"]["name"] for o in self.listing}
        self.calls: list[tuple[str, str, Any]] = []

    async def get(self, path: str, **query: Any) -> dict[str, Any]:
        self.calls.append(("GET", path, query))
        return {"items": self.listing, "metadata": {}}

    async def delete(self, path: str) -> bool:
        self.calls.append(("DELETE", path, None))
        return path.rsplit("/", 1)[-1] in self.existing

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("PATCH", path, body))
        return body


def wf(name: str, phase: str = "Running", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "labels": labels,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"nodes": [{"name": "a", "job": "j"}]},
        "status": {
            "phase": phase,
            "progress": "0/1",
            "startedAt": "2026-01-01T00:00:01.000000Z",
            "finishedAt": "2026-01-01T00:00:04.500000Z",
        },
    }


# -- 11: quiet broken pipes, one-line errors ------------------------------------------------


def test_a_closed_stdout_pipe_ends_the_command_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes anything
    try:
        done = subprocess.run(
            [*SHOAL, "validate", str(HELLO)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == EXIT_BROKEN_PIPE
    assert done.stderr == ""  # no traceback, no "Exception ignored"


def test_history_failures_are_one_error_line_and_never_show_the_database_url(
    tmp_path: Path,
) -> None:
    env_free = shoal("history", "--database-url-file", str(tmp_path / "none"))
    assert (env_free.returncode, env_free.stderr.count("\n")) == (2, 1)
    assert env_free.stderr.startswith("error: cannot read --database-url-file")
    dsn = "postgresql://me:s3cret@127.0.0.1:1/archive"
    down = shoal("history", "--database-url", dsn)
    assert down.returncode == 1
    assert down.stderr.startswith("error: cannot read the archive: ")
    assert "Traceback" not in down.stderr
    assert "s3cret" not in down.stderr


# -- 2: options after positional arguments ------------------------------------------------


def test_logs_takes_options_between_and_after_its_positional_arguments() -> None:
    args = parse(["logs", "hello", "-n", "team", "goodbye", "--tail", "20"])  # docs/cli.md
    assert (args.name, args.node, args.namespace) == ("hello", "goodbye", "team")
    assert logs_command.log_query(args) == {"tailLines": "20"}
    args = parse(["logs", "--timestamps", "wf", "--since", "5m", "step"])
    assert (args.name, args.node) == ("wf", "step")
    assert logs_command.log_query(args) == {"sinceSeconds": "300", "timestamps": "true"}


def test_get_takes_options_after_the_name() -> None:
    args = parse(["get", "wf", "-o", "json", "-n", "team", "--watch", "--timeout", "3"])
    assert (args.name, args.output, args.namespace, args.watch, args.timeout) == (
        "wf",
        "json",
        "team",
        True,
        3.0,
    )


# -- 1: --version ---------------------------------------------------------------------------


def test_version_is_the_installed_distribution_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"shoal {version('shoal')}\n"


# -- 3: --context ---------------------------------------------------------------------------


def two_contexts(path: Path) -> Path:
    """A kubeconfig whose current context is `home`, and a second one, `work`."""
    cluster = {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "home", "cluster": cluster},
                    {"name": "work", "cluster": {**cluster, "server": "https://127.0.0.1:2"}},
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "home", "context": {"cluster": "home", "user": "u"}},
                    {
                        "name": "work",
                        "context": {"cluster": "work", "user": "u", "namespace": "team"},
                    },
                ],
                "current-context": "home",
            }
        )
    )
    return path


def test_context_picks_the_cluster_and_the_namespace(tmp_path: Path) -> None:
    kubeconfig = str(two_contexts(tmp_path / "config"))
    assert common.default_namespace(kubeconfig) == "default"
    assert common.default_namespace(kubeconfig, "work") == "team"
    done = shoal("list", "--kubeconfig", kubeconfig, "--context", "work")
    assert done.returncode == 1
    assert done.stderr.startswith(
        "error: cannot reach the Kubernetes API server at https://127.0.0.1:2"
    )
    unknown = shoal("get", "wf", "--kubeconfig", kubeconfig, "--context", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith(
        f"error: cannot load Kubernetes credentials from {kubeconfig} (context 'nope')"
    )


# -- 4: list -l and -o ----------------------------------------------------------------------


def test_list_sends_the_selector_to_the_server() -> None:
    api = FakeApi([wf("a")])
    found = asyncio.run(list_command._all_pages(api, "/wfs", "ns", "team=etl"))  # type: ignore[arg-type]
    assert found == [wf("a")]
    assert api.calls == [("GET", "/wfs", {"limit": 500, "labelSelector": "team=etl"})]


def test_list_outputs_name_json_yaml_and_wide() -> None:
    items = [wf("b", "Succeeded", team="etl"), wf("a")]
    assert list_command.render(items, "name", all_namespaces=False) == ["workflow/a", "workflow/b"]
    doc = json.loads(list_command.render(items, "json", all_namespaces=False)[0])
    assert (doc["kind"], [o["metadata"]["name"] for o in doc["items"]]) == ("List", ["a", "b"])
    assert yaml.safe_load(list_command.render(items, "yaml", all_namespaces=False)[0]) == doc
    wide = [line.split() for line in list_command.render(items, "wide", all_namespaces=False)]
    assert wide[0] == [
        "NAME",
        "PHASE",
        "PROGRESS",
        "AGE",
        "STARTED",
        "DURATION",
        "LABELS",
        "MESSAGE",
    ]
    assert wide[2][:3] == ["b", "Succeeded", "0/1"]
    assert wide[2][4:7] == ["2026-01-01T00:00:01.000000Z", "3.5s", "team=etl"]


# -- 5: get -o json|yaml is the whole object --------------------------------------------------


def test_get_json_and_yaml_print_metadata_spec_and_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    get_command.print_workflow(wf("a"), "json")
    assert json.loads(capsys.readouterr().out) == wf("a")
    get_command.print_workflow(wf("a"), "yaml")
    assert yaml.safe_load(capsys.readouterr().out) == wf("a")


def test_get_watch_refuses_node_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "wf", "--watch", "--node", "a", "--kubeconfig", "/nowhere"]) == 2
    assert capsys.readouterr().err == "error: --watch shows the whole workflow; drop --node\n"


# -- 6 and 8: stdin, submit --dry-run, --parameter-file ------------------------------------------


def test_a_manifest_of_dash_is_read_from_stdin_and_named_stdin() -> None:
    text = HELLO.read_text()
    assert shoal("validate", "-", stdin=text).stdout == "<stdin>: Workflow hello: valid (2 nodes)\n"
    bad = shoal("submit", "-", "--dry-run", stdin=text.replace("nodes:", "nodez:", 1))
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: <stdin>:")


def test_submit_dry_run_prints_the_object_without_a_cluster(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text('{"name": "Ada"}')
    done = subprocess.run(
        [
            *SHOAL,
            "submit",
            str(HELLO),
            "--dry-run",
            "--parameter-file",
            str(params),
            "-p",
            "name=Bo",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "KUBECONFIG": str(tmp_path / "no-such-kubeconfig")},
    )
    assert done.returncode == 0, done.stderr
    created = yaml.safe_load(done.stdout)
    assert created["metadata"] == {"name": "hello"}
    assert created["spec"]["parameters"] == {"name": "Bo"}  # -p wins over the file
    as_json = shoal(
        "submit", str(HELLO), "--dry-run", "-o", "json", "--parameter-file", str(params)
    )
    assert json.loads(as_json.stdout)["spec"]["parameters"] == {"name": "Ada"}


def test_a_parameter_file_must_hold_a_mapping(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text("[1, 2]")
    done = shoal("submit", str(HELLO), "--dry-run", "--parameter-file", str(params))
    assert done.returncode == 2
    assert done.stderr == f"error: {params}: parameters must be a mapping of names to values\n"


# -- 7: logs --since --timestamps -------------------------------------------------------------


def test_logs_since_reads_durations_and_refuses_other_text() -> None:
    assert logs_command.log_query(parse(["logs", "wf", "--since", "1h30m"])) == {
        "sinceSeconds": "5400"
    }
    assert shoal("logs", "wf", "--since", "yesterday").returncode == 2


def test_a_timestamped_protocol_line_keeps_its_time_and_is_decoded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stamp = "2026-01-01T00:00:00.123456789Z"
    logs_command._emit("a", f'{stamp} @shoal/2 {{"type":"log","message":"hi"}}', stamped=True)
    assert capsys.readouterr().out == f"a | {stamp} hi\n"


# -- 9: cron list, suspend, resume ------------------------------------------------------------


def cron(name: str, schedule: Any, suspend: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"schedule": schedule, "suspend": suspend},
        "status": {
            "nextScheduleTime": "2026-01-01T00:05:00Z",
            "lastScheduleTime": "2026-01-01T00:00:00Z",
        },
    }


def test_cron_list_shows_the_schedule_in_words_and_the_next_and_last_run() -> None:
    now = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    lines = cron_admin_command.cron_rows(
        [cron("nightly", "0 0 3 * * *", suspend=True), cron("polled", None)],
        now,
        all_namespaces=False,
    )
    assert lines[0].split() == ["NAME", "SCHEDULE", "IN", "WORDS", "NEXT", "LAST", "SUSPENDED"]
    assert "At 03:00" in lines[1]
    assert lines[1].startswith("nightly  0 0 3 * * *")
    assert lines[1].endswith("in 3m  2m ago  yes")
    assert lines[2].split() == ["polled", "-", "-", "in", "3m", "2m", "ago", "no"]


def test_cron_suspend_and_resume_patch_spec_suspend(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    asyncio.run(cron_admin_command._set_suspend(api, "ns", "nightly", True))  # type: ignore[arg-type]
    asyncio.run(cron_admin_command._set_suspend(api, "ns", "nightly", False))  # type: ignore[arg-type]
    path = "/apis/shoal.dev/v1alpha1/namespaces/ns/cronworkflows/nightly"
    assert api.calls == [
        ("PATCH", path, {"spec": {"suspend": True}}),
        ("PATCH", path, {"spec": {"suspend": False}}),
    ]
    assert (
        capsys.readouterr().out == "cronworkflow nightly suspended\ncronworkflow nightly resumed\n"
    )


@pytest.mark.parametrize("argv", [["cron", "suspend"], ["cron", "list", "x"]])
def test_cron_argument_mistakes_exit_2_before_connecting(argv: list[str]) -> None:
    assert main([*argv, "--kubeconfig", "/nowhere"]) == 2


# -- 10: delete and wait --------------------------------------------------------------------


def test_delete_reports_each_name_and_exits_1_when_one_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = FakeApi([wf("a")])
    code = asyncio.run(delete_command._delete(api, "ns", ["a", "ghost"]))  # type: ignore[arg-type]
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == "workflow a deleted\n"
    assert captured.err == "error: workflow 'ghost' not found in namespace 'ns'\n"


def test_delete_by_selector_asks_the_server_which_match() -> None:
    api = FakeApi([wf("b"), wf("a")])
    names = asyncio.run(delete_command._matching(api, "ns", "team=etl"))  # type: ignore[arg-type]
    assert names == ["a", "b"]
    assert api.calls[0][2] == {"labelSelector": "team=etl"}


@pytest.mark.parametrize("argv", [["delete"], ["delete", "a", "-l", "x=y"]])
def test_delete_needs_names_or_a_selector_not_both(argv: list[str]) -> None:
    assert main([*argv, "--kubeconfig", "/nowhere"]) == 2


def test_wait_targets_a_phase_or_any_final_one() -> None:
    assert wait_command.reached(wf("a", "Failed"), "finished")
    assert not wait_command.reached(wf("a", "Running"), "finished")
    assert wait_command.reached(wf("a", "Running"), "Running")
    assert not wait_command.reached(wf("a", "Failed"), "Succeeded")


# -- 12: --import from the current directory and PYTHONPATH -----------------------------------


def test_import_path_is_the_manifest_folder_then_cwd_then_pythonpath(tmp_path: Path) -> None:
    manifests, here, lib = tmp_path / "m", tmp_path / "here", tmp_path / "here" / "lib"
    found = local_commands.import_path(manifests, here, os.pathsep.join(["lib", str(manifests)]))
    assert found == [manifests.resolve(), here.resolve(), lib.resolve()]


# -- 13: completion ---------------------------------------------------------------------------


def test_bash_completion_registers_and_knows_the_new_flags() -> None:
    script = shoal("completion", "bash").stdout
    assert "--dry-run" in script
    assert "--context" in script
    assert "suspend" in script
    done = subprocess.run(
        ["bash", "-c", 'eval "$(cat)"; complete -p shoal'],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(" shoal")


@pytest.mark.parametrize(
    ("shell", "marker"), [("zsh", "#compdef shoal"), ("fish", "complete -c shoal")]
)
def test_zsh_and_fish_scripts_are_for_shoal(shell: str, marker: str) -> None:
    assert marker in shoal("completion", shell).stdout


def test_an_unreadable_database_url_file_is_one_error_line(tmp_path: Path) -> None:
    for command in ("get", "logs"):
        done = shoal(command, "wf", "--database-url-file", str(tmp_path / "none"))
        assert done.returncode == 2
        missing = tmp_path / "none"
        assert done.stderr == (
            f"error: cannot read --database-url-file {missing}: No such file or directory\n"
        )


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["list", "--bogus"], "error: unrecognized arguments: --bogus (see 'shoal list --help')"),
        (["get"], "error: the following arguments are required: name (see 'shoal get --help')"),
        (["frob"], "error: argument COMMAND: invalid choice: 'frob'"),
    ],
)
def test_a_bad_flag_is_one_error_line_and_exit_2(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(said)
    assert err.count("\n") == 1
