"""What PostgreSQL refuses (NUL, lone surrogates) never costs a run its archive row."""

from __future__ import annotations

import json

import pytest

from shoal.archive.pgtext import REPLACEMENT, pg_json, pg_text


def test_nul_and_lone_surrogates_become_the_replacement_character() -> None:
    assert pg_text("a\x00b") == f"a{REPLACEMENT}b"
    assert pg_text("bad \ud800 half") == "bad ? half"
    assert pg_text("plain") == "plain"


def test_json_with_nul_in_values_and_keys_is_accepted_and_keeps_the_rest() -> None:
    value = {"name\x00": ["x\x00y", {"deep": "\x00"}], "n": 1}
    text = pg_json(value)
    assert text is not None
    assert "\\u0000" not in text
    assert json.loads(text) == {
        f"name{REPLACEMENT}": [f"x{REPLACEMENT}y", {"deep": REPLACEMENT}],
        "n": 1,
    }


def test_the_literal_text_backslash_u0000_is_not_a_nul_and_is_kept() -> None:
    value = {"path": "C:\\u0000", "both": "\\\x00"}
    text = pg_json(value)
    assert text is not None
    assert json.loads(text) == {"path": "C:\\u0000", "both": "\\" + REPLACEMENT}


def test_none_stays_none_and_other_values_are_written_as_text() -> None:
    assert pg_json(None) is None
    assert pg_json({"when": complex(1, 2)}) == '{"when":"(1+2j)"}'


async def test_an_unreachable_archive_says_why_without_its_password() -> None:
    """The reason /readyz and the logs show never carries the DSN's password."""
    from shoal.archive.db import ArchiveUnavailable, DeferredPool

    pool = DeferredPool("postgresql://shoal:hunter2@127.0.0.1:1/db", max_backoff_seconds=0.01)
    await pool.open()
    try:
        assert not pool.connected
        assert pool.problem is not None
        assert "hunter2" not in pool.problem
        with pytest.raises(ArchiveUnavailable) as caught:
            pool.acquire()
        assert isinstance(caught.value, ConnectionError)  # writers retry it as transient
        assert "hunter2" not in str(caught.value)
    finally:
        await pool.close()
