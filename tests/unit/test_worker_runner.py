"""The shoal-worker entrypoint, in process: outcomes, exit codes, reporting paths."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shoal.core.collector import Outcome, StreamCollector
from shoal_worker import Context, job
from shoal_worker import registry as registry_module
from shoal_worker.cli import parse_command_line
from shoal_worker.protocol import (
    ErrorMessage,
    Message,
    ResultMessage,
)
from shoal_worker.runner import main
from shoal_worker.termination import TerminationMessage, parse_termination_message

TOKEN = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("SHOAL_"):
            monkeypatch.delenv(name)
    registry_module.names()  # built-ins in before the snapshot
    saved = dict(registry_module._registry)
    yield
    registry_module._registry.clear()
    registry_module._registry.update(saved)


@dataclass
class Run:
    code: int
    messages: list[Message]
    outcome: Outcome
    termination: TerminationMessage | None
    stderr: str

    @property
    def result(self) -> ResultMessage:
        results = [m for m in self.messages if isinstance(m, ResultMessage)]
        assert len(results) == 1, self.messages
        return results[0]

    @property
    def errors(self) -> list[ErrorMessage]:
        return [m for m in self.messages if isinstance(m, ErrorMessage)]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def invoke(*argv: str, termination: bool = True) -> Run:
        path = tmp_path / "termination-log"
        path.unlink(missing_ok=True)
        extra = ["--termination-log", str(path)] if termination else []
        monkeypatch.setenv("SHOAL_PROTOCOL_TOKEN", TOKEN)  # as the executor hands it over
        code = main([*argv, *extra])
        out, err = capsys.readouterr()
        collector = StreamCollector(TOKEN)
        messages = [collector.feed(text) for text in out.splitlines()]
        text = path.read_text() if path.exists() else None
        outcome = collector.finish(code, text)
        parsed = parse_termination_message(text, TOKEN) if text else None
        return Run(code, messages, outcome, parsed, err)

    return invoke


def test_noop_succeeds_with_a_result_and_a_termination_message(run: Any) -> None:
    result = run("run", "--job", "shoal.noop")
    assert result.code == 0
    assert result.messages == [ResultMessage("succeeded", {}, None, 1)]
    assert result.termination == TerminationMessage("succeeded", {}, "")
    assert result.outcome.succeeded


def test_run_is_the_default_command(run: Any) -> None:
    assert run("--job", "shoal.echo", "--args", '{"a": 1}').outcome.outputs == {"a": 1}


def test_environment_drives_a_plain_invocation(
    run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "from-env"
    monkeypatch.setenv("SHOAL_JOB", "shoal.echo")
    monkeypatch.setenv("SHOAL_ARGS", '{"x": [1, 2]}')
    monkeypatch.setenv("SHOAL_TERMINATION_MESSAGE_PATH", str(path))
    result = run(termination=False)
    assert result.code == 0
    assert result.outcome.outputs == {"x": [1, 2]}
    assert json.loads(path.read_text())["outputs"] == {"x": [1, 2]}


def test_cli_options_win_over_the_environment(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_JOB", "shoal.fail")
    monkeypatch.setenv("SHOAL_ARGS", "not even json")
    assert run("--job", "shoal.echo", "--args", '{"b": 2}').outcome.outputs == {"b": 2}


def test_args_file_and_env_args_file(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = tmp_path / "args.json"
    args.write_text('{"from": "file", "ü": "✓"}', encoding="utf-8")
    assert run("--job", "shoal.echo", "--args-file", str(args)).outcome.outputs == {
        "from": "file",
        "ü": "✓",
    }
    monkeypatch.setenv("SHOAL_ARGS_FILE", str(args))
    assert run("--job", "shoal.echo").outcome.outputs["from"] == "file"


def test_args_file_dash_reads_stdin(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"piped": true}'))
    assert run("--job", "shoal.echo", "--args-file", "-").outcome.outputs == {"piped": True}


def test_outputs_set_and_returned_all_reach_the_result(run: Any) -> None:
    @job("t-outputs")
    def outputs(ctx: Context) -> dict[str, Any]:
        ctx.set_output("early", 1)
        ctx.set_output("both", "set")
        return {"both": "returned", "late": [1, 2]}

    result = run("--job", "t-outputs")
    assert result.code == 0
    expected = {"early": 1, "both": "returned", "late": [1, 2]}
    assert result.result.outputs == expected
    assert result.outcome.outputs == expected
    assert result.termination is not None
    assert result.termination.outputs == expected


@pytest.mark.parametrize(
    ("returned", "outputs"),
    [(None, {}), (42, {"result": 42}), ("x", {"result": "x"}), ([1], {"result": [1]})],
)
def test_return_values(run: Any, returned: Any, outputs: dict[str, Any]) -> None:
    @job("t-return")
    def give() -> Any:
        return returned

    assert run("--job", "t-return").outcome.outputs == outputs


def test_unserialisable_return_value_fails_naming_the_key(run: Any) -> None:
    @job("t-bad-return")
    def bad() -> Any:
        return {"fine": 1, "when": object()}

    result = run("--job", "t-bad-return")
    assert result.code == 1
    assert "output 'when' is not JSON-serialisable" in result.result.message
    assert "output 'when' is not JSON-serialisable" in result.outcome.message


def test_async_jobs_run(run: Any) -> None:
    @job("t-async")
    async def async_job(ctx: Context, n: int) -> dict[str, int]:
        await asyncio.sleep(0)
        ctx.log("async works")
        return {"double": n * 2}

    result = run("--job", "t-async", "--args", '{"n": 21}')
    assert result.code == 0
    assert result.outcome.outputs == {"double": 42}


def test_exception_fails_with_type_message_and_traceback(run: Any) -> None:
    @job("t-raise")
    def boom(ctx: Context) -> None:
        ctx.set_output("partial", True)
        raise KeyError("missing thing")

    result = run("--job", "t-raise")
    assert result.code == 1
    (error,) = result.errors
    assert error.error_type == "KeyError"
    assert error.message == "'missing thing'"
    assert error.traceback is not None
    assert "in boom" in error.traceback
    assert "shoal_worker/runner.py" not in error.traceback  # the job's frames, not plumbing
    assert result.result.status == "failed"
    assert result.result.message == "KeyError: 'missing thing'"
    assert result.result.outputs == {"partial": True}
    assert result.outcome.message.startswith("KeyError: 'missing thing' (exit code 1)")


def test_job_failed_is_a_failure_without_a_traceback(run: Any) -> None:
    result = run("--job", "shoal.fail", "--args", '{"message": "no data", "exit_code": 7}')
    assert result.code == 7
    assert result.errors == []
    assert result.result.message == "no data"
    assert result.termination == TerminationMessage("failed", {}, "no data")
    assert result.outcome.message == "no data (exit code 7)"


@pytest.mark.parametrize(
    ("code", "exit_code", "status"),
    [(None, 0, "succeeded"), (0, 0, "succeeded"), (5, 5, "failed"), ("bye", 1, "failed")],
)
def test_sys_exit_in_a_job(run: Any, code: Any, exit_code: int, status: str) -> None:
    @job("t-exit")
    def leave() -> None:
        sys.exit(code)

    result = run("--job", "t-exit")
    assert (result.code, result.result.status) == (exit_code, status)


def test_print_becomes_plain_log_lines_and_never_breaks_a_message(run: Any) -> None:
    @job("t-print")
    def chatty(ctx: Context) -> None:
        print("hello from print")
        sys.stdout.write("no newline yet ")
        ctx.set_output("k", "v")
        print("...done")
        sys.stdout.write("dangling")

    result = run("--job", "t-print")
    assert result.outcome.outputs == {"k": "v"}
    assert result.outcome.succeeded
    collector = StreamCollector(TOKEN)
    for msg in result.messages:
        if hasattr(msg, "text"):
            collector.feed(msg.text)
    assert collector.tail() == ["hello from print", "no newline yet ...done", "dangling"]


def test_a_printed_fake_result_stays_log_text_and_the_job_never_sees_the_token(
    run: Any,
) -> None:
    seen: list[str | None] = []

    @job("t-forge")
    def forge(ctx: Context) -> dict[str, int]:
        seen.append(os.environ.get("SHOAL_PROTOCOL_TOKEN"))
        for version in ("1 ", "2 ", "2:" + "0" * 32 + " "):
            print("@shoal/" + version + '{"type":"result","status":"failed","outputs":{"x":9}}')
        return {"real": 1}

    result = run("--job", "t-forge")
    assert result.outcome.succeeded
    assert result.outcome.outputs == {"real": 1}
    assert result.result.outputs == {"real": 1}
    assert result.termination is not None
    assert result.termination.outputs == {"real": 1}
    assert seen == [None]


def test_stdout_is_restored_after_the_run(run: Any) -> None:
    before = sys.stdout
    run("--job", "shoal.noop")
    assert sys.stdout is before


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ([], "no job given: pass --job NAME or set SHOAL_JOB"),
        (["--job", "shoal.nop"], "did you mean 'shoal.noop'?"),
        (["--job", "shoal.echo", "--args", "{bad"], "--args: invalid JSON"),
        (["--job", "shoal.echo", "--args", "[1]"], "--args: expected a JSON object"),
        (["--job", "shoal.echo", "--args", '{"x": NaN}'], "--args: invalid JSON"),
        (
            ["--job", "shoal.echo", "--args-file", "/nonexistent/a.json"],
            "--args-file /nonexistent/a.json: cannot read",
        ),
        (
            ["--job", "shoal.sleep", "--args", '{"seconds": "5"}'],
            "argument 'seconds': expected float, got str",
        ),
        (
            ["--job", "shoal.noop", "--import", "no_such_module_q"],
            "cannot import job module 'no_such_module_q'",
        ),
        (["--job", "x", "--bogus"], "unknown option '--bogus' for 'run'"),
        (["--job", "x", "extra"], "unexpected argument 'extra'"),
        (["run", "--job"], "option --job needs a value"),
        (["--job", "x", "--args", "{}", "--args-file", "f"], "either --args or --args-file"),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_wrong(run: Any, argv: list[str], problem: str) -> None:
    result = run(*argv)
    assert result.code == 2
    assert problem in result.stderr
    (error,) = result.errors
    assert error.error_type == "UsageError"
    assert problem in error.message
    assert problem in result.result.message
    assert result.termination is not None
    assert problem in result.termination.message
    assert not result.outcome.succeeded


def test_bad_args_json_names_line_and_column(run: Any, tmp_path: Path) -> None:
    args = tmp_path / "args.json"
    args.write_text('{\n  "a": 1,\n  oops\n}')
    result = run("--job", "shoal.echo", "--args-file", str(args))
    assert f"--args-file {args}: invalid JSON: Expecting property name" in result.stderr
    assert "at line 3 column 3" in result.stderr


def test_both_env_arg_sources_is_an_error(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_ARGS", "{}")
    monkeypatch.setenv("SHOAL_ARGS_FILE", "/x")
    assert "set only one" in run("--job", "shoal.noop").stderr


def test_bad_metadata_env_is_a_usage_error(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_ATTEMPT", "first")
    result = run("--job", "shoal.noop")
    assert result.code == 2
    assert "SHOAL_ATTEMPT" in result.stderr


def test_unwritable_termination_log_warns_and_still_succeeds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["--job", "shoal.noop", "--termination-log", str(tmp_path / "no" / "dir")])
    out, err = capsys.readouterr()
    assert code == 0
    assert "cannot write the termination message" in err
    assert '"status":"succeeded"' in out


def test_progress_is_flushed_before_the_result(run: Any) -> None:
    result = run("--job", "shoal.sleep", "--args", '{"seconds": 0.05}')
    assert result.code == 0
    assert result.outcome.succeeded
    progress = [m for m in result.messages if type(m).__name__ == "ProgressMessage"]
    assert progress[0].percent == 0
    assert progress[-1].percent == 100


def test_list_prints_job_names(capsys: pytest.CaptureFixture[str]) -> None:
    @job("t-listed")
    def listed() -> None: ...

    assert main(["list"]) == 0
    names = capsys.readouterr().out.split()
    assert "t-listed" in names
    assert "shoal.noop" in names
    assert names == sorted(names)


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "usage: shoal-worker" in capsys.readouterr().out
    assert main(["list", "-h"]) == 0
    assert "SHOAL_TERMINATION_MESSAGE_PATH" in capsys.readouterr().out


def test_list_rejects_run_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--job", "x"]) == 2
    assert "unknown option '--job' for 'list'" in capsys.readouterr().err


def test_equals_form_and_repeated_imports() -> None:
    options = parse_command_line(
        ["run", "--job=a:b", "--args={}", "--import", "m1", "--import=m2", "--termination-log=t"]
    )
    assert (options.command, options.job, options.args, options.termination_log) == (
        "run",
        "a:b",
        "{}",
        "t",
    )
    assert options.imports == ["m1", "m2"]
    assert parse_command_line([]).command == "run"


def test_job_threads_may_print_while_the_job_logs(run: Any) -> None:
    @job("t-threads")
    def threaded(ctx: Context) -> int:
        def work(n: int) -> None:
            for index in range(100):
                print(f"thread {n} line {index}")
                ctx.set_output(f"t{n}-{index}", index)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        return 1

    result = run("--job", "t-threads")
    assert result.code == 0
    assert len(result.outcome.outputs) == 301
    assert result.outcome.outputs_complete
