"""The @shoal/2 line protocol: parsing, encoding, tokens, violations and the stream collector."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.core.collector import StreamCollector
from shoal_worker.protocol import (
    MARKER,
    PROTOCOL_VERSION,
    TERMINATION_MESSAGE_LIMIT,
    ErrorMessage,
    LogMessage,
    Message,
    OutputMessage,
    PlainLine,
    ProgressMessage,
    ProtocolViolation,
    ResultMessage,
    encode,
    new_token,
    parse_display,
    parse_line,
    redact,
)
from shoal_worker.termination import build_termination_message

TOKEN = "5f2c0e8b9a7d4c3e1f0a6b8c7d9e2f41"
M = MARKER + TOKEN + " "
"""The start of a message of the attempt whose token is TOKEN."""


def line(doc: dict[str, Any]) -> str:
    return M + json.dumps(doc)


def violation(text: str) -> str:
    msg = parse_line(text, TOKEN)
    assert isinstance(msg, ProtocolViolation), msg
    assert msg.text == redact(text.rstrip("\n"), TOKEN)
    assert TOKEN not in msg.text
    return msg.problem


def test_constants() -> None:
    assert MARKER == "@shoal/2:"
    assert PROTOCOL_VERSION == 2
    assert TERMINATION_MESSAGE_LIMIT == 4096


# --- parsing -------------------------------------------------------------------------


def test_the_documented_echo_example_parses() -> None:
    msg = parse_line(M + '{"type":"output","key":"count","value":3}\n', TOKEN)
    assert msg == OutputMessage(key="count", value=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type":"log","message":"hi"}', LogMessage("hi", "info", {}, None)),
        (
            '{"type":"log","seq":4,"message":"hi","level":"error","fields":{"a":[1]}}',
            LogMessage("hi", "error", {"a": [1]}, 4),
        ),
        ('{"type":"progress","percent":50}', ProgressMessage(percent=50)),
        (
            '{"type":"progress","percent":12.5,"message":"m","current":1,"total":8}',
            ProgressMessage(12.5, "m", 1, 8),
        ),
        ('{"type":"progress","message":"loading"}', ProgressMessage(message="loading")),
        ('{"type":"output","key":"k","value":null}', OutputMessage("k", None)),
        ('{"type":"output","key":"k","value":{"x":[1,"2"]}}', OutputMessage("k", {"x": [1, "2"]})),
        ('{"type":"result","status":"succeeded"}', ResultMessage("succeeded")),
        (
            '{"type":"result","status":"failed","outputs":{"a":1},"message":"no"}',
            ResultMessage("failed", {"a": 1}, "no"),
        ),
        ('{"type":"error","message":"boom"}', ErrorMessage("boom")),
        (
            '{"type":"error","message":"boom","errorType":"ValueError","traceback":"tb"}',
            ErrorMessage("boom", "ValueError", "tb"),
        ),
        # Optional fields may be null; unknown fields are ignored (forward compatible).
        ('{"type":"log","message":"x","level":null,"fields":null}', LogMessage("x")),
        ('{"type":"log","message":"x","extra":{"future":true}}', LogMessage("x")),
        ('{"type":"log","message":"x","ts":"2026-01-02T03:04:05.123Z"}', LogMessage("x")),
        ('{"type":"log","message":"x","ts":"2026-01-02T03:04:05+02:00"}', LogMessage("x")),
    ],
)
def test_parse_messages(text: str, expected: Message) -> None:
    assert parse_line(M + text, TOKEN) == expected
    assert parse_line(M + text + "\n", TOKEN) == expected
    assert parse_line(M + text + "\r\n", TOKEN) == expected


@pytest.mark.parametrize(
    "text",
    ["", "hello", "  @shoal/1 {}", "shoal/1 {}", "@shoa", '{"type":"log","message":"x"}'],
)
def test_plain_lines(text: str) -> None:
    assert parse_line(text + "\n", TOKEN) == PlainLine(text)


def test_only_one_newline_is_stripped() -> None:
    assert parse_line("a\n\n", TOKEN) == PlainLine("a\n")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('@shoal/3 {"type":"log","message":"x"}', "unsupported protocol version 3"),
        ("@shoal/10 {}", "unsupported protocol version 10"),
        (MARKER + TOKEN + '{"type":"log","message":"x"}', "malformed marker"),
        ("@shoal/2", "malformed marker"),
        ("@shoal/ hello", "malformed marker"),
        (M, "invalid JSON"),
        (M + "{not json}", "invalid JSON"),
        (M + '{"type":"log","message":"x"', "invalid JSON"),
        (M + '{"type":"progress","percent":NaN}', "invalid JSON"),
        (M + '{"type":"progress","percent":Infinity}', "invalid JSON"),
        (M + "[" * 100_000, "invalid JSON"),
        (M + '["log"]', "must be a JSON object, got array"),
        (M + '"log"', "must be a JSON object, got string"),
        (M + "3", "must be a JSON object, got number"),
        (M + "null", "must be a JSON object, got null"),
        (M + '{"message":"x"}', "missing field 'type'"),
        (M + '{"type":3}', "field 'type' must be a string, got number"),
        (M + '{"type":"banana"}', "unknown message type 'banana'"),
        (M + '{"type":"artifact","key":"k"}', "'artifact' is reserved"),
        (M + '{"type":"log","message":"x","seq":"1"}', "'seq' must be an integer"),
        (M + '{"type":"log","message":"x","seq":1.5}', "'seq' must be an integer"),
        (M + '{"type":"log","message":"x","seq":true}', "'seq' must be an integer"),
        (M + '{"type":"log","message":"x","ts":5}', "'ts' must be an RFC 3339"),
        (M + '{"type":"log","message":"x","ts":"yesterday"}', "'ts' must be an RFC 3339"),
        (M + '{"type":"log"}', "needs field 'message'"),
        (M + '{"type":"log","message":null}', "'message' must be a string, got null"),
        (M + '{"type":"log","message":["x"]}', "'message' must be a string, got array"),
        (M + '{"type":"log","message":"x","level":"fatal"}', "'level' must be one of"),
        (M + '{"type":"log","message":"x","level":1}', "'level' must be a string"),
        (M + '{"type":"log","message":"x","fields":[]}', "'fields' must be an object"),
        (M + '{"type":"progress","percent":"5"}', "'percent' must be a number"),
        (M + '{"type":"progress","percent":true}', "'percent' must be a number"),
        (M + '{"type":"progress","percent":101}', "between 0 and 100"),
        (M + '{"type":"progress","percent":-1}', "between 0 and 100"),
        (M + '{"type":"progress","current":1.5}', "'current' must be an integer"),
        (M + '{"type":"progress","total":"9"}', "'total' must be an integer"),
        (M + '{"type":"progress","message":7}', "'message' must be a string"),
        (M + '{"type":"output","value":1}', "needs field 'key'"),
        (M + '{"type":"output","key":"","value":1}', "non-empty"),
        (M + '{"type":"output","key":1,"value":1}', "'key' must be a string"),
        (M + '{"type":"output","key":"k"}', "needs field 'value'"),
        (M + '{"type":"result"}', "missing field 'status'"),
        (M + '{"type":"result","status":"ok"}', "'status' must be one of"),
        (M + '{"type":"result","status":"failed","outputs":[1]}', "'outputs' must be an"),
        (M + '{"type":"result","status":"failed","outputs":{"":1}}', "non-empty"),
        (M + '{"type":"result","status":"failed","message":false}', "'message' must be"),
        (M + '{"type":"error"}', "needs field 'message'"),
        (M + '{"type":"error","message":"x","errorType":1}', "'errorType' must be"),
        (M + '{"type":"error","message":"x","traceback":[]}', "'traceback' must be"),
    ],
)
def test_violations_are_kept_with_their_problem(text: str, problem: str) -> None:
    assert problem in violation(text + "\n")


# --- encoding ------------------------------------------------------------------------


ROUND_TRIP: list[Message] = [
    LogMessage("hello"),
    LogMessage("multi\nline\r\ttext \u2028 \u2029 \x85 é 日本 🐟", "warning", {"a": {"b": [1]}}, 3),
    ProgressMessage(),
    ProgressMessage(0),
    ProgressMessage(100, "done", 10, 10, 9),
    ProgressMessage(33.3, None, 1, None),
    OutputMessage("k", None),
    OutputMessage("k", {"nested": [1, 2.5, "x", True, None]}, 1),
    OutputMessage("ключ", "значение"),
    ResultMessage("succeeded"),
    ResultMessage("failed", {"a": 1}, "why", 12),
    ResultMessage("succeeded", {}, ""),
    ErrorMessage("boom"),
    ErrorMessage("boom", "pkg.Error", "Traceback...\n  line\n", 2),
    PlainLine("just a line"),
    ProtocolViolation('@shoal/9 {"type":"log"}', "unsupported"),
]


@pytest.mark.parametrize("msg", ROUND_TRIP)
def test_encode_round_trips(msg: Message) -> None:
    text = encode(msg, TOKEN)
    assert "\n" not in text
    assert text.splitlines() == [text] or text == ""
    parsed = parse_line(text + "\n", TOKEN)
    if isinstance(msg, ProtocolViolation):
        assert isinstance(parsed, ProtocolViolation)
        assert parsed.text == msg.text
    else:
        assert parsed == msg


def test_encode_is_compact_with_type_and_seq_first() -> None:
    text = encode(OutputMessage("count", 3, seq=7), TOKEN)
    assert text == M + '{"type":"output","seq":7,"key":"count","value":3}'
    assert encode(LogMessage("é"), TOKEN) == M + '{"type":"log","message":"é","level":"info"}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), {1, 2}])
def test_encode_rejects_what_json_cannot_carry(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode(OutputMessage("k", value), TOKEN)


# --- collector -----------------------------------------------------------------------


def collect(*lines: str) -> StreamCollector:
    collector = StreamCollector(TOKEN)
    for text in lines:
        collector.feed(text + "\n")
    return collector


def test_collector_accumulates_outputs_in_order_result_on_top() -> None:
    collector = collect(
        line({"type": "output", "key": "a", "value": 1}),
        line({"type": "output", "key": "b", "value": 1}),
        line({"type": "output", "key": "a", "value": 2}),
        line({"type": "progress", "percent": 10}),
        line({"type": "progress", "percent": 20, "message": "m"}),
        line({"type": "result", "status": "succeeded", "outputs": {"b": 3, "c": 4}}),
    )
    assert collector.outputs == {"a": 2, "b": 3, "c": 4}
    assert collector.progress == ProgressMessage(20, "m")
    assert collector.result == ResultMessage("succeeded", {"b": 3, "c": 4})
    outcome = collector.finish(0, None)
    assert outcome.succeeded
    assert outcome.outputs == {"a": 2, "b": 3, "c": 4}
    assert outcome.outputs_complete
    assert outcome.message == ""


def test_collector_tail_is_bounded_and_keeps_violations_as_log_lines() -> None:
    collector = StreamCollector(TOKEN, tail_lines=3)
    for index in range(10):
        collector.feed(f"line {index}\n")
    collector.feed(line({"type": "log", "message": "careful", "level": "warning"}) + "\n")
    bad = M + '{"type":"nope"}'
    returned = collector.feed(bad + "\n")
    assert isinstance(returned, ProtocolViolation)
    assert collector.violations == 1
    assert collector.tail() == ["line 9", "WARNING: careful", redact(bad, TOKEN)]


def test_collector_clips_long_lines_in_the_tail() -> None:
    collector = collect("x" * 10_000)
    assert len(collector.tail()[0]) == 500


def test_second_result_is_a_violation_and_the_first_stands() -> None:
    collector = StreamCollector(TOKEN)
    collector.feed(line({"type": "result", "status": "succeeded"}))
    second = collector.feed(line({"type": "result", "status": "failed"}) + "\n")
    assert isinstance(second, ProtocolViolation)
    assert "duplicate result" in second.problem
    assert collector.result == ResultMessage("succeeded")
    assert collector.violations == 1


def test_failure_message_says_why_with_exit_code_and_last_lines() -> None:
    collector = collect(
        "connecting to db",
        line({"type": "error", "message": "no route", "errorType": "OSError"}),
        line({"type": "result", "status": "failed", "message": "OSError: no route"}),
    )
    outcome = collector.finish(1, None)
    assert not outcome.succeeded
    assert outcome.exit_code == 1
    assert outcome.message.splitlines() == [
        "OSError: no route (exit code 1)",
        "last log lines:",
        "  connecting to db",
    ]


def test_failure_without_result_uses_the_last_error() -> None:
    collector = collect(line({"type": "error", "message": "bad", "errorType": "KeyError"}))
    assert collector.finish(1, None).message == "KeyError: bad (exit code 1)"


def test_failure_of_a_plain_container_names_the_exit_code_and_signal() -> None:
    assert collect("oops").finish(3, None).message == "Exit code 3\nlast log lines:\n  oops"
    assert collect().finish(137, None).message == "Exit code 137, SIGKILL"
    assert collect().finish(-9, None).message == "Killed by signal SIGKILL"


def test_exit_code_decides_even_against_a_succeeded_result() -> None:
    collector = collect(line({"type": "result", "status": "succeeded", "message": "fine"}))
    outcome = collector.finish(1, None)
    assert not outcome.succeeded
    assert outcome.message.startswith("Exit code 1")


def test_failed_result_with_exit_zero_is_a_failure() -> None:
    outcome = collect(line({"type": "result", "status": "failed", "message": "no data"})).finish(
        0, None
    )
    assert not outcome.succeeded
    assert outcome.message == "no data (exit code 0)"
    silent = collect(line({"type": "result", "status": "failed"})).finish(0, None)
    assert silent.message == "the job reported failure (exit code 0)"


def test_plain_container_exit_zero_succeeds_with_stream_outputs() -> None:
    outcome = collect("hi", line({"type": "output", "key": "n", "value": 1})).finish(0, None)
    assert outcome.succeeded
    assert outcome.outputs == {"n": 1}
    assert outcome.outputs_complete


def test_killed_reason_always_fails_and_comes_first() -> None:
    collector = collect(
        "working",
        line({"type": "result", "status": "failed", "message": "terminated by SIGTERM"}),
    )
    outcome = collector.finish(143, None, killed_reason="activeDeadlineSeconds (60s) exceeded")
    assert not outcome.succeeded
    assert outcome.message.splitlines()[0] == (
        "activeDeadlineSeconds (60s) exceeded; terminated by SIGTERM (exit code 143, SIGTERM)"
    )
    killed = collect(line({"type": "result", "status": "succeeded"})).finish(
        0, None, killed_reason="OOMKilled"
    )
    assert not killed.succeeded


def test_unknown_exit_code_falls_back_to_the_result() -> None:
    assert collect(line({"type": "result", "status": "succeeded"})).finish(None, None).succeeded
    outcome = collect().finish(None, None)
    assert not outcome.succeeded
    assert outcome.message == "no result was reported (exit code unknown)"


def term(status: str, outputs: dict[str, Any], message: str = "", limit: int = 4096) -> str:
    return build_termination_message(status, outputs, message, token=TOKEN, limit=limit).decode()


def test_stream_result_is_preferred_over_the_termination_message() -> None:
    collector = collect(line({"type": "result", "status": "succeeded", "outputs": {"a": 1}}))
    outcome = collector.finish(0, term("failed", {"a": 2}, "stale"))
    assert outcome.succeeded
    assert outcome.outputs == {"a": 1}


def test_broken_stream_falls_back_to_the_termination_message() -> None:
    # The log stream died after one output; the termination message has the rest.
    collector = collect("starting", line({"type": "output", "key": "a", "value": 1}))
    outcome = collector.finish(0, term("succeeded", {"a": 1, "b": 2}, "all good"))
    assert outcome.succeeded
    assert outcome.outputs == {"a": 1, "b": 2}
    assert outcome.message == "all good"
    assert outcome.outputs_complete

    failed = collect().finish(0, term("failed", {}, "quota exceeded"))
    assert not failed.succeeded
    assert failed.message == "quota exceeded (exit code 0)"


def test_no_stream_at_all_uses_the_termination_message_for_the_reason() -> None:
    outcome = StreamCollector(TOKEN).finish(1, term("failed", {}, "ValueError: bad region"))
    assert outcome.message == "ValueError: bad region (exit code 1)"


def test_truncated_outputs_complete_when_the_stream_delivered_them() -> None:
    big = {"blob": "x" * 5000, "n": 1}
    text = term("succeeded", big)
    collector = collect(
        line({"type": "output", "key": "blob", "value": big["blob"]}),
        line({"type": "output", "key": "n", "value": 1}),
    )
    outcome = collector.finish(0, text)
    assert outcome.succeeded
    assert outcome.outputs == big
    assert outcome.outputs_complete
    assert outcome.missing_outputs == ()


def test_truncated_outputs_missing_from_the_stream_are_reported() -> None:
    text = term("succeeded", {"blob": "x" * 5000, "n": 1})
    outcome = collect(line({"type": "output", "key": "n", "value": 1})).finish(0, text)
    assert outcome.succeeded
    assert not outcome.outputs_complete
    assert outcome.missing_outputs == ("blob",)
    assert outcome.outputs == {"n": 1}
    assert "outputs incomplete" in outcome.message
    assert "'blob'" in outcome.message


def test_truncated_key_list_means_completeness_is_unknown() -> None:
    outputs = {f"key-{index:04d}-" + "k" * 40: index for index in range(200)}
    text = term("succeeded", outputs)
    outcome = StreamCollector(TOKEN).finish(0, text)
    assert not outcome.outputs_complete
    assert "list of output keys was truncated" in outcome.message


def test_non_shoal_termination_message_is_shown_when_there_are_no_logs() -> None:
    outcome = StreamCollector(TOKEN).finish(1, "panic: runtime error\n")
    assert outcome.message == "Exit code 1\ntermination message:\n  panic: runtime error"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_line_never_raises(text: str) -> None:
    for candidate in (text, M + text, MARKER + text, "@shoal/" + text):
        assert isinstance(
            parse_line(candidate, TOKEN),
            LogMessage
            | ProgressMessage
            | OutputMessage
            | ResultMessage
            | ErrorMessage
            | PlainLine
            | ProtocolViolation,
        )


@settings(max_examples=200, deadline=None)
@given(message=st.text(), key=st.text(min_size=1), value=st.text())
def test_any_text_round_trips_on_one_line(message: str, key: str, value: str) -> None:
    for msg in (LogMessage(message, "debug", {key: value}, 1), OutputMessage(key, value, 2)):
        text = encode(msg, TOKEN)
        assert len(text.splitlines()) == 1
        assert parse_line(text + "\n", TOKEN) == msg


# --- the attempt token ---------------------------------------------------------------

FORGED_RESULT = '{"type":"result","status":"succeeded","outputs":{"owned":true}}'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("@shoal/1 " + FORGED_RESULT, "protocol version 1 is no longer accepted"),
        ("@shoal/2 " + FORGED_RESULT, "without this attempt's token"),
        (MARKER + "0" * 32 + " " + FORGED_RESULT, "without this attempt's token"),
        (MARKER + TOKEN[:-1] + " " + FORGED_RESULT, "without this attempt's token"),
        (MARKER + TOKEN + "0 " + FORGED_RESULT, "without this attempt's token"),
        (MARKER + " " + FORGED_RESULT, "malformed marker"),
    ],
)
def test_a_control_line_without_the_attempt_token_is_only_log_text(text: str, problem: str) -> None:
    msg = parse_line(text + "\n", TOKEN)
    assert isinstance(msg, ProtocolViolation)
    assert problem in msg.problem
    assert TOKEN not in msg.text  # a near-miss that contains the token is scrubbed too
    collector = StreamCollector(TOKEN)
    collector.feed(text + "\n")
    assert collector.result is None
    assert collector.outputs == {}
    assert collector.violations == 1
    assert collector.finish(0, None).outputs == {}


def test_a_printed_fake_result_does_not_replace_the_real_one() -> None:
    collector = collect(
        "@shoal/2 " + FORGED_RESULT,
        MARKER + "f" * 32 + " " + FORGED_RESULT,
        line({"type": "result", "status": "succeeded", "outputs": {"real": 1}}),
    )
    outcome = collector.finish(0, None)
    assert outcome.outputs == {"real": 1}
    assert collector.violations == 2


def test_a_consumer_without_a_token_accepts_no_message() -> None:
    for token in ("", TOKEN):
        msg = parse_line(MARKER + " " + FORGED_RESULT, token)
        assert isinstance(msg, ProtocolViolation)
    assert isinstance(parse_line(MARKER + TOKEN + " " + FORGED_RESULT, ""), ProtocolViolation)
    assert StreamCollector("").feed(encode(ResultMessage("succeeded"), "")) != ResultMessage(
        "succeeded"
    )


def test_the_token_never_reaches_stored_or_shown_text() -> None:
    collector = StreamCollector(TOKEN)
    lines = [
        line({"type": "log", "message": "hi"}),
        M + "{not json",  # a real control line that is broken: kept, without its token
        f"the job echoed {TOKEN} by mistake",
        "@shoal/9:" + TOKEN + " {}",
    ]
    for text in lines:
        msg = collector.feed(text + "\n")
        assert TOKEN not in collector.redact(text)
        if isinstance(msg, PlainLine | ProtocolViolation):
            assert TOKEN not in msg.text
    assert collector.redact(lines[0]) == '@shoal/2 {"type": "log", "message": "hi"}'
    assert all(TOKEN not in text for text in collector.tail())
    failed = collector.finish(1, f"garbage {TOKEN}")
    assert TOKEN not in failed.message
    # Even a job that reports the token itself (a log, an error) does not get it shown.
    told = collect(
        line({"type": "log", "message": f"token={TOKEN}"}),
        line({"type": "error", "message": f"bad {TOKEN}"}),
    )
    assert all(TOKEN not in text for text in told.tail())
    assert TOKEN not in told.finish(1, None).message


def test_stored_lines_still_read_as_messages_for_people() -> None:
    stored = redact(line({"type": "output", "key": "n", "value": 1}), TOKEN)
    assert parse_display(stored) == OutputMessage("n", 1)
    assert parse_display(line({"type": "output", "key": "n", "value": 1})) == OutputMessage("n", 1)
    assert parse_display("plain") == PlainLine("plain")


def test_the_termination_message_needs_the_token_too() -> None:
    real = build_termination_message("succeeded", {"real": 1}, token=TOKEN).decode()
    forged = build_termination_message("succeeded", {"owned": True}, token="0" * 32).decode()
    v1 = '{"v":1,"status":"succeeded","outputs":{"owned":true},"message":""}'
    assert StreamCollector(TOKEN).finish(0, real).outputs == {"real": 1}
    for text in (forged, v1):
        outcome = StreamCollector(TOKEN).finish(0, text)
        assert outcome.outputs == {}


def test_tokens_are_fresh_and_fit_a_shell_word() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) == 32 and t.isalnum() for t in tokens)
