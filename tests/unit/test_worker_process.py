"""shoal-worker end to end in real child processes: what a pod or `shoal run` sees."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from shoal.core.collector import Outcome, StreamCollector
from shoal_worker.protocol import (
    ProgressMessage,
    ResultMessage,
)
from shoal_worker.termination import parse_termination_message

TIMEOUT = 60
TOKEN = "b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9"
VENV_BIN = Path(sys.executable).parent


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    collector: StreamCollector
    outcome: Outcome
    termination: str | None


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment whose PYTHONPATH holds tmp_path (for job modules)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SHOAL_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), clean.get("PYTHONPATH")]))
    clean["SHOAL_TERMINATION_MESSAGE_PATH"] = str(tmp_path / "termination-log")
    clean["SHOAL_PROTOCOL_TOKEN"] = TOKEN
    return clean


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "shoal_worker.runner", *args]


def finish(code: int, stdout: str, stderr: str, termination: Path) -> Finished:
    collector = StreamCollector(TOKEN)
    for line in stdout.splitlines():
        collector.feed(line)
    text = termination.read_text(encoding="utf-8") if termination.exists() else None
    return Finished(code, stdout, stderr, collector, collector.finish(code, text), text)


def run_worker(command: list[str], env: dict[str, str], **kwargs: object) -> Finished:
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    termination = Path(env["SHOAL_TERMINATION_MESSAGE_PATH"])
    return finish(done.returncode, done.stdout, done.stderr, termination)


def write_module(tmp_path: Path, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def test_success(env: dict[str, str]) -> None:
    done = run_worker(worker_command("run", "--job", "shoal.echo", "--args", '{"a": 1}'), env)
    assert done.code == 0, done.stderr
    assert done.outcome.succeeded
    assert done.outcome.outputs == {"a": 1}
    assert done.termination == (
        '{"v":2,"token":"' + TOKEN + '","status":"succeeded","outputs":{"a":1},"message":""}'
    )


def test_console_script_driven_by_the_environment(env: dict[str, str]) -> None:
    env.update(SHOAL_JOB="shoal.echo", SHOAL_ARGS='{"region": "eu-west"}')
    done = run_worker([str(VENV_BIN / "shoal-worker")], env)
    assert done.code == 0, done.stderr
    assert done.outcome.outputs == {"region": "eu-west"}


def test_python_dash_m_shoal_worker(env: dict[str, str]) -> None:
    done = run_worker([sys.executable, "-m", "shoal_worker", "--job", "shoal.noop"], env)
    assert done.code == 0, done.stderr


def test_failure_exits_1_with_a_traceback_in_an_error_message(
    env: dict[str, str], tmp_path: Path
) -> None:
    write_module(
        tmp_path,
        "failing_jobs",
        """
        from shoal_worker import Context, job

        @job("explode")
        def explode(ctx: Context, reason: str) -> None:
            ctx.log("about to fail")
            raise RuntimeError(reason)
        """,
    )
    done = run_worker(
        worker_command("--import", "failing_jobs", "--job", "explode", "--args", '{"reason":"x"}'),
        env,
    )
    assert done.code == 1
    (error,) = done.collector.errors
    assert error.error_type == "RuntimeError"
    assert error.traceback is not None
    assert "failing_jobs.py" in error.traceback
    assert "raise RuntimeError(reason)" in error.traceback
    assert done.outcome.message.splitlines() == [
        "RuntimeError: x (exit code 1)",
        "last log lines:",
        "  about to fail",
    ]
    termination = parse_termination_message(done.termination or "", TOKEN)
    assert termination is not None
    assert termination.status == "failed"
    assert termination.message == "RuntimeError: x"


def test_unknown_job_exits_2_with_a_suggestion(env: dict[str, str]) -> None:
    done = run_worker(worker_command("--job", "shoal.slep"), env)
    assert done.code == 2
    assert "unknown job 'shoal.slep'; did you mean 'shoal.sleep'?" in done.stderr
    assert "did you mean 'shoal.sleep'?" in done.outcome.message
    assert "(exit code 2)" in done.outcome.message


def test_module_function_jobs_need_no_registration(env: dict[str, str], tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "plain_module",
        """
        def add(a: int, b: int) -> int:
            return a + b

        class Tools:
            @staticmethod
            def shout(text: str) -> dict[str, str]:
                return {"loud": text.upper()}
        """,
    )
    done = run_worker(worker_command("--job", "plain_module:add", "--args", '{"a":2,"b":3}'), env)
    assert done.code == 0, done.stderr
    assert done.outcome.outputs == {"result": 5}
    shout = run_worker(
        worker_command("--job", "plain_module:Tools.shout", "--args", '{"text":"hi"}'), env
    )
    assert shout.outcome.outputs == {"loud": "HI"}
    typed = run_worker(worker_command("--job", "plain_module:add", "--args", '{"a":"2"}'), env)
    assert typed.code == 2
    assert "job 'plain_module:add': missing required argument 'b'" in typed.stderr
    assert "argument 'a': expected int, got str" in typed.stderr


def test_shoal_import_environment_variable(env: dict[str, str], tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "env_jobs_a",
        "from shoal_worker import job\n\n@job\ndef alpha() -> str:\n    return 'a'\n",
    )
    write_module(
        tmp_path,
        "env_jobs_b",
        "from shoal_worker import job\n\n@job('beta')\ndef b() -> str:\n    return 'b'\n",
    )
    env["SHOAL_IMPORT"] = "env_jobs_a, env_jobs_b"
    assert run_worker(worker_command("--job", "beta"), env).outcome.outputs == {"result": "b"}
    listing = subprocess.run(
        worker_command("list"), env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert listing.returncode == 0
    assert {"alpha", "beta", "shoal.noop"} <= set(listing.stdout.split())


def test_entry_points_register_jobs_of_installed_packages(
    env: dict[str, str], tmp_path: Path
) -> None:
    # What `pip install acme-jobs` leaves behind: a module and a dist-info naming it.
    write_module(
        tmp_path,
        "acme_jobs",
        "from shoal_worker import job\n\n@job('acme.hello')\ndef hello(name: str) -> str:\n"
        "    return f'hello {name}'\n",
    )
    dist = tmp_path / "acme_jobs-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-jobs\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[shoal.jobs]\nacme = acme_jobs\n")
    done = run_worker(worker_command("--job", "acme.hello", "--args", '{"name":"ann"}'), env)
    assert done.code == 0, done.stderr
    assert done.outcome.outputs == {"result": "hello ann"}
    listing = subprocess.run(
        worker_command("list"), env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert "acme.hello" in listing.stdout.split()


def test_a_broken_entry_point_is_named_when_the_job_is_missing(
    env: dict[str, str], tmp_path: Path
) -> None:
    dist = tmp_path / "broken_jobs-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-jobs\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[shoal.jobs]\nbroken = no_such_module_zz\n")
    done = run_worker(worker_command("--job", "wanted"), env)
    assert done.code == 2
    assert "broken = no_such_module_zz (from broken-jobs)" in done.stderr
    # A job that does not need the broken package still runs.
    assert run_worker(worker_command("--job", "shoal.noop"), env).code == 0
    write_module(tmp_path, "good_jobs", "from shoal_worker import job\n\n@job\ndef good(): pass\n")
    good = tmp_path / "good_jobs-1.0.dist-info"
    good.mkdir()
    (good / "METADATA").write_text("Metadata-Version: 2.1\nName: good-jobs\nVersion: 1.0\n")
    (good / "entry_points.txt").write_text("[shoal.jobs]\ngood = good_jobs\n")
    found = run_worker(worker_command("--job", "good"), env)
    assert found.code == 0
    assert "warning: entry point failed: broken = no_such_module_zz" in found.stderr


def test_a_shell_script_speaks_the_protocol_with_echo(env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            echo "starting"
            m="@shoal/2:$SHOAL_PROTOCOL_TOKEN"
            echo "$m"' {"type":"log","message":"counting","level":"info"}'
            echo "$m"' {"type":"progress","percent":50,"message":"half way"}'
            echo "$m {\\"type\\":\\"output\\",\\"key\\":\\"count\\",\\"value\\":3}"
            printf '@shoal/2:%s {"type":"output","key":"names","value":["a","b"]}\\n' \\
                "$SHOAL_PROTOCOL_TOKEN"
            echo "$m"' {"type":"output","key":"count","value":4}'
            echo '@shoal/1 {"type":"output","key":"old","value":1}'
            echo '@shoal/2 {"type":"output","key":"forged","value":1}'
            echo "$m"' {"type":"result","status":"succeeded","outputs":{"done":true}}'
            printf '{"v":2,"token":"%s","status":"succeeded","outputs":{"count":4},"message":""}' \\
                "$SHOAL_PROTOCOL_TOKEN" > "$SHOAL_TERMINATION_MESSAGE_PATH"
            """
        )
    )
    script.chmod(0o755)
    done = run_worker([str(script)], env)
    assert done.code == 0
    assert done.outcome.succeeded
    assert done.outcome.outputs == {"count": 4, "names": ["a", "b"], "done": True}
    assert done.collector.progress == ProgressMessage(50, "half way")
    assert done.collector.violations == 2
    assert done.collector.tail() == [
        "starting",
        "counting",
        '@shoal/1 {"type":"output","key":"old","value":1}',
        '@shoal/2 {"type":"output","key":"forged","value":1}',
    ]
    assert parse_termination_message(done.termination or "", TOKEN) is not None


def protocol_doc_shell_blocks() -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    return re.findall(r"```sh\n(.*?)```", text, re.DOTALL)


def test_the_shell_examples_in_docs_protocol_md_work_as_documented(
    env: dict[str, str], tmp_path: Path
) -> None:
    one_line, script, failing = protocol_doc_shell_blocks()
    done = run_worker(["sh", "-c", one_line], env)
    assert done.outcome.outputs == {"count": 3}

    data = tmp_path / "input.csv"
    data.write_text("a\nb\nc\n")
    done = run_worker(["sh", "-c", script], {**env, "INPUT": str(data)})
    assert done.code == 0, done.stderr
    assert done.outcome.succeeded
    assert done.outcome.outputs == {"rows": 3}
    assert done.collector.violations == 0
    assert done.collector.progress == ProgressMessage(50, "half way")
    termination = parse_termination_message(done.termination or "", TOKEN)
    assert termination is not None
    assert termination.outputs == {"rows": 3}

    done = run_worker(["sh", "-c", failing], env)
    assert done.code == 1
    assert done.outcome.message.splitlines()[0] == "OSError: no space left (exit code 1)"


def test_a_failing_shell_script(env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "fail.sh"
    script.write_text(
        "#!/bin/sh\necho 'disk full'\n"
        'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN "'
        '\'{"type":"error","message":"no space left","errorType":"OSError"}\'\n'
        "exit 4\n"
    )
    script.chmod(0o755)
    done = run_worker([str(script)], env)
    assert done.code == 4
    assert done.outcome.message.splitlines()[0] == "OSError: no space left (exit code 4)"


def test_lingering_threads_do_not_hang_the_pod(env: dict[str, str], tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "thread_jobs",
        """
        import threading, time

        def leave_a_thread() -> str:
            threading.Thread(target=time.sleep, args=(3600,), name="forgotten").start()
            return "done"
        """,
    )
    done = run_worker([str(VENV_BIN / "shoal-worker"), "--job", "thread_jobs:leave_a_thread"], env)
    assert done.code == 0
    assert done.outcome.outputs == {"result": "done"}
    assert "forgotten" in done.stderr


# --- SIGTERM -------------------------------------------------------------------------


Spawn = Callable[..., tuple["subprocess.Popen[str]", "queue.Queue[str | None]"]]


@pytest.fixture
def spawn(env: dict[str, str]) -> Iterator[Spawn]:
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
        process = subprocess.Popen(
            worker_command(*args),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        processes.append(process)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        return process, lines

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def wait_for(lines: queue.Queue[str | None], collector: StreamCollector, want: str) -> None:
    """Feed lines until one contains ``want``; every wait is bounded."""
    while True:
        line = lines.get(timeout=TIMEOUT)
        assert line is not None, f"the worker ended before printing {want!r}"
        collector.feed(line)
        if want in line:
            return


def drain(lines: queue.Queue[str | None], collector: StreamCollector) -> None:
    while (line := lines.get(timeout=TIMEOUT)) is not None:
        collector.feed(line)


def test_sigterm_fails_the_job_with_exit_143(spawn: Spawn, env: dict[str, str]) -> None:
    process, lines = spawn("--job", "shoal.sleep", "--args", '{"seconds": 600}')
    collector = StreamCollector(TOKEN)
    wait_for(lines, collector, '"type":"progress"')  # the job has started
    process.send_signal(signal.SIGTERM)
    drain(lines, collector)
    code = process.wait(timeout=TIMEOUT)
    assert code == 143
    termination = Path(env["SHOAL_TERMINATION_MESSAGE_PATH"]).read_text()
    outcome = collector.finish(code, termination)
    assert collector.result is not None
    assert (collector.result.status, collector.result.message) == (
        "failed",
        "terminated by SIGTERM",
    )
    assert outcome.message.startswith("terminated by SIGTERM (exit code 143, SIGTERM)")
    assert json.loads(termination)["message"] == "terminated by SIGTERM"
    (error,) = collector.errors
    assert error.error_type == "Terminated"
    assert error.traceback is not None
    assert "builtin.py" in error.traceback  # where the job was when the signal came


def test_sigterm_cancels_an_async_job_and_its_cleanup_runs(spawn: Spawn, tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "async_jobs",
        """
        import asyncio
        from shoal_worker import Context

        async def wait_forever(ctx: Context) -> None:
            ctx.set_output("before", 1)
            try:
                print("started", flush=True)
                await asyncio.sleep(600)
            finally:
                print("cleanup ran", flush=True)
        """,
    )
    process, lines = spawn("--job", "async_jobs:wait_forever")
    collector = StreamCollector(TOKEN)
    wait_for(lines, collector, "started")
    process.send_signal(signal.SIGTERM)
    drain(lines, collector)
    code = process.wait(timeout=TIMEOUT)
    assert code == 143
    assert "cleanup ran" in collector.tail()
    outcome = collector.finish(code, None)
    assert not outcome.succeeded
    assert outcome.outputs == {"before": 1}
    assert outcome.message.startswith("terminated by SIGTERM")


def test_sigterm_reaches_code_that_catches_exception(spawn: Spawn, tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "stubborn_jobs",
        """
        import time

        def stubborn() -> None:
            print("started", flush=True)
            while True:
                try:
                    time.sleep(600)
                except Exception:
                    print("swallowed", flush=True)
        """,
    )
    process, lines = spawn("--job", "stubborn_jobs:stubborn")
    collector = StreamCollector(TOKEN)
    wait_for(lines, collector, "started")
    process.send_signal(signal.SIGTERM)
    drain(lines, collector)
    assert process.wait(timeout=TIMEOUT) == 143
    assert "swallowed" not in collector.tail()
    assert isinstance(collector.result, ResultMessage)
    assert collector.result.status == "failed"


def test_sigterm_while_importing_job_modules_is_reported(spawn: Spawn, tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "slow_import_jobs",
        """
        import time

        print("importing", flush=True)
        time.sleep(600)  # a heavy import, as far as the worker can tell
        """,
    )
    process, lines = spawn("--import", "slow_import_jobs", "--job", "shoal.noop")
    collector = StreamCollector(TOKEN)
    wait_for(lines, collector, "importing")
    process.send_signal(signal.SIGTERM)
    drain(lines, collector)
    code = process.wait(timeout=TIMEOUT)
    assert code == 143
    assert collector.finish(code, None).message.startswith("terminated by SIGTERM")
