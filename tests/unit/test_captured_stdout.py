"""`captureStdout`: a command node's plain stdout becomes `outputs.result` (the collector)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from shoal.api.limits import MAX_RESULT_BYTES
from shoal.api.workflow import Node
from shoal.core.collector import StreamCollector
from shoal.kube.attempts import Attempt
from shoal_worker.protocol import LogMessage, OutputMessage, encode

TOKEN = "t0k3n"


def capture(text: str, **kwargs: int) -> StreamCollector:
    """A collector fed ``text`` the way a pipe splits it into lines (newlines kept)."""
    collector = StreamCollector(TOKEN, capture_stdout=True, **kwargs)
    for line in text.splitlines(keepends=True):
        collector.feed(line)
    return collector


@given(
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs",),
            blacklist_characters="\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
        ),
        max_size=200,
    )
)
def test_result_is_stdout_less_one_trailing_newline(text: str) -> None:
    assume(not any(line.startswith("@shoal/") for line in text.split("\n")))  # protocol
    outcome = capture(text).finish(0, None)
    expected = text[:-1] if text.endswith("\n") else text
    assert outcome.succeeded
    assert outcome.outputs["result"] == expected


def test_protocol_lines_and_stderr_stay_out_of_the_result() -> None:
    collector = StreamCollector(TOKEN, capture_stdout=True)
    collector.feed("first\n")
    collector.feed(encode(LogMessage("a log message"), TOKEN) + "\n")
    collector.feed("a warning\n", stdout=False)
    collector.feed("second\n")
    outcome = collector.finish(0, None)
    assert outcome.outputs == {"result": "first\nsecond"}


def test_an_explicit_result_output_wins_over_the_captured_one() -> None:
    collector = capture("printed\n")
    collector.feed(encode(OutputMessage("result", 42), TOKEN) + "\n")
    assert collector.finish(0, None).outputs == {"result": 42}


def test_the_token_never_reaches_the_result() -> None:
    outcome = capture(f"secret {TOKEN} here\n").finish(0, None)
    assert TOKEN not in outcome.outputs["result"]


def test_without_the_setting_stdout_is_only_the_log() -> None:
    collector = StreamCollector(TOKEN)
    collector.feed("hello\n")
    assert collector.finish(0, None).outputs == {}


def test_stdout_at_the_limit_is_kept_whole() -> None:
    outcome = capture("ab\ncd\n", max_result_bytes=5).finish(0, None)
    assert outcome.succeeded
    assert outcome.outputs["result"] == "ab\ncd"


def test_stdout_beyond_the_limit_fails_the_node_naming_it() -> None:
    outcome = capture("ab\ncde\n", max_result_bytes=5).finish(0, None)
    assert not outcome.succeeded
    assert "MAX_RESULT_BYTES" in outcome.message
    assert "5 bytes" in outcome.message
    assert "result" not in outcome.outputs


def test_the_default_limit_is_the_documented_one() -> None:
    big = "x" * MAX_RESULT_BYTES + "\n"
    assert capture(big).finish(0, None).outputs["result"] == "x" * MAX_RESULT_BYTES
    assert not capture(big + "y\n").finish(0, None).succeeded


def test_a_line_cut_in_transport_fails_the_capture() -> None:
    collector = StreamCollector(TOKEN, capture_stdout=True)
    collector.violation("xxxx [cut]", "line too long")
    outcome = collector.finish(0, None)
    assert not outcome.succeeded
    assert "too long" in outcome.message


def test_a_failed_command_keeps_its_own_failure_message() -> None:
    outcome = capture("partial\n").finish(3, None)
    assert not outcome.succeeded
    assert outcome.message.lower().startswith("exit code 3")
    assert "MAX_RESULT_BYTES" not in outcome.message


def test_a_job_node_cannot_capture_stdout() -> None:
    with pytest.raises(ValidationError, match="captureStdout"):
        Node.model_validate({"name": "a", "job": "j", "captureStdout": True})
    node = Node.model_validate({"name": "a", "command": ["echo"], "captureStdout": True})
    assert node.capture_stdout


def test_an_attempt_adopted_after_a_restart_captures_what_its_node_asks() -> None:
    attempt = Attempt("count", 0, 1, "job", 0.0, token=TOKEN)  # as adoption builds it
    attempt.capture(True)
    attempt.collector.feed("42\n")
    assert attempt.collector.finish(0, None).outputs == {"result": "42"}
