"""The termination message: its format and explicit handling of the 4096-byte limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal_worker.termination import (
    TERMINATION_MESSAGE_LIMIT,
    TRUNCATION_SUFFIX,
    TerminationMessage,
    build_termination_message,
    parse_termination_message,
    write_termination_message,
)

TOKEN = "9e1d4b7a2c6f8e0d3b5a7c9e1f2d4b6a"

LIMIT = TERMINATION_MESSAGE_LIMIT


def decoded(data: bytes) -> dict[str, object]:
    doc = json.loads(data.decode("utf-8"))
    assert isinstance(doc, dict)
    return doc


def test_small_message_is_complete() -> None:
    data = build_termination_message("succeeded", {"a": 1, "é": "ü"}, "ok", token=TOKEN)
    expected = '{"v":2,"token":"%s","status":"succeeded","outputs":{"a":1,"é":"ü"},"message":"ok"}'
    assert data == (expected % TOKEN).encode()
    assert parse_termination_message(data.decode(), TOKEN) == TerminationMessage(
        "succeeded", {"a": 1, "é": "ü"}, "ok"
    )


def filling(char: str) -> dict[str, str]:
    """Outputs of ``char`` (then ASCII) that encode to exactly the limit, in bytes."""
    room = LIMIT - len(build_termination_message("succeeded", {"k": ""}, "m", token=TOKEN))
    count, rest = divmod(room, len(char.encode()))
    return {"k": char * count + "x" * rest}


@pytest.mark.parametrize("char", ["x", "é", "日", "🐟"])  # 1, 2, 3 and 4 UTF-8 bytes
def test_exactly_at_the_limit_is_kept_whole(char: str) -> None:
    outputs = filling(char)
    data = build_termination_message("succeeded", outputs, "m", token=TOKEN)
    assert len(data) == LIMIT
    assert len(data.decode()) < LIMIT or char == "x"  # bytes are counted, not characters
    assert decoded(data)["outputs"] == outputs


@pytest.mark.parametrize("char", ["x", "é", "日", "🐟"])
def test_one_character_over_the_limit_drops_outputs(char: str) -> None:
    outputs = filling(char)
    outputs["k"] += char  # now over the limit by the character's byte width
    data = build_termination_message("succeeded", outputs, "m", token=TOKEN)
    assert len(data) <= LIMIT
    doc = decoded(data)
    assert "outputs" not in doc
    assert doc == {
        "v": 2,
        "token": TOKEN,
        "status": "succeeded",
        "outputsTruncated": True,
        "outputKeys": ["k"],
        "message": "m",
    }
    parsed = parse_termination_message(data.decode(), TOKEN)
    assert parsed is not None
    assert parsed.outputs_truncated
    assert parsed.output_keys == ["k"]
    assert not parsed.output_keys_truncated


@pytest.mark.parametrize("char", ["x", "é", "\n", '"', "日", "🐟", "\udc80"])
def test_long_message_is_cut_to_fit_on_a_character_boundary(char: str) -> None:
    message = "start " + char * 10_000
    data = build_termination_message("failed", {"a": 1}, message, token=TOKEN)
    assert len(data) <= LIMIT
    assert len(data) > LIMIT - 16  # it uses the room it has
    doc = decoded(data)
    assert doc["outputKeys"] == ["a"]
    text = doc["message"]
    assert isinstance(text, str)
    assert text.startswith("start ")
    assert text.endswith(TRUNCATION_SUFFIX)


def test_long_message_without_outputs_keeps_an_empty_outputs_object() -> None:
    data = build_termination_message("failed", {}, "y" * 9000, token=TOKEN)
    assert len(data) <= LIMIT
    doc = decoded(data)
    assert doc["outputs"] == {}
    assert "outputsTruncated" not in doc
    assert str(doc["message"]).endswith(TRUNCATION_SUFFIX)


def test_too_many_keys_are_cut_and_flagged_but_the_message_survives() -> None:
    outputs = {f"output-number-{index:05d}": index for index in range(1000)}
    message = "the reason this failed " * 100
    data = build_termination_message("failed", outputs, message, token=TOKEN)
    assert len(data) <= LIMIT
    parsed = parse_termination_message(data.decode(), TOKEN)
    assert parsed is not None
    assert parsed.outputs_truncated
    assert parsed.output_keys_truncated
    assert 0 < len(parsed.output_keys) < 1000
    assert parsed.output_keys == list(outputs)[: len(parsed.output_keys)]
    assert len(parsed.message.encode()) >= 1000


def test_a_single_huge_key_is_dropped_from_the_key_list() -> None:
    data = build_termination_message("succeeded", {"k" * 5000: 1}, "", token=TOKEN)
    assert len(data) <= LIMIT
    parsed = parse_termination_message(data.decode(), TOKEN)
    assert parsed is not None
    assert parsed.output_keys == []
    assert parsed.output_keys_truncated


@pytest.mark.parametrize(
    "text",
    [
        "",
        "panic: oops",
        "[]",
        '{"v":3,"status":"succeeded"}',
        # version 1 had no token; a wrong or missing token is someone else's message
        '{"v":1,"status":"succeeded"}',
        '{"v":2,"status":"succeeded"}',
        '{"v":2,"token":"0000","status":"succeeded"}',
        '{"v":2,"token":null,"status":"succeeded"}',
        '{"v":true,"status":"succeeded"}',
        '{"status":"succeeded"}',
        '{"v":2,"token":"%s","status":"maybe"}',
        '{"v":2,"token":"%s","status":"failed","outputs":[]}',
        '{"v":2,"token":"%s","status":"failed","message":1}',
        '{"v":2,"token":"%s","status":"failed","outputsTruncated":"yes"}',
        '{"v":2,"token":"%s","status":"failed","outputKeys":[1]}',
    ],
)
def test_parse_rejects_what_is_not_a_v2_termination_message_with_the_token(text: str) -> None:
    text = text.replace("%s", TOKEN)
    assert parse_termination_message(text, TOKEN) is None


def test_write_creates_the_file(tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    assert write_termination_message(str(target), b'{"v":1}')
    assert target.read_bytes() == b'{"v":1}'


def test_write_to_an_unwritable_path_warns_and_carries_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-dir" / "termination-log"
    assert not write_termination_message(str(target), b"{}")
    err = capsys.readouterr().err
    assert "cannot write the termination message" in err
    assert str(target) in err


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    status=st.sampled_from(["succeeded", "failed"]),
    outputs=st.dictionaries(st.text(min_size=1, max_size=300), json_values, max_size=60),
    message=st.text(max_size=6000),
    limit=st.sampled_from([1200, 2048, LIMIT]),
)
def test_any_message_fits_and_parses_back(
    status: str, outputs: dict[str, object], message: str, limit: int
) -> None:
    data = build_termination_message(status, outputs, message, token=TOKEN, limit=limit)
    assert len(data) <= limit
    parsed = parse_termination_message(data.decode("utf-8"), TOKEN)
    assert parsed is not None
    assert parsed.status == status
    if not parsed.outputs_truncated:
        assert parsed.outputs == outputs
    else:
        assert parsed.output_keys == list(outputs)[: len(parsed.output_keys)]
        assert parsed.output_keys_truncated or parsed.output_keys == list(outputs)
    if parsed.message != message:
        assert parsed.message.endswith(TRUNCATION_SUFFIX) or parsed.message == ""
