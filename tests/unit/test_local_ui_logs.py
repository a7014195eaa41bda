"""`shoal run --ui` reads a local node log (local/logs.py's format) back by attempt."""

from __future__ import annotations

from pathlib import Path

from shoal.local.logs import NodeLogs
from shoal.server.local_logs import log_page, read_tail


def write_fan_out(workdir: Path) -> Path:
    """Two items side by side, item 1 retried, with the real writer of local runs."""
    logs = NodeLogs(workdir)
    first = logs.attempt("scan", 0, 1, fan_out=True)
    second = logs.attempt("scan", 1, 1, fan_out=True)
    first.write("a0 line 1\n")
    second.write("b1 line 1\n")
    first.write("a0 line 2\n")
    second.end("exited 1")
    first.end("exited 0")
    retry = logs.attempt("scan", 1, 2, fan_out=True)
    retry.write("--- item 0 attempt 1 exited 0 ---\n")  # a job mimicking a delimiter
    retry.write("b2 unterminated")
    retry.end("exited 0")
    logs.close_all()
    return logs.path("scan")


def test_each_items_latest_attempt_in_item_order(tmp_path: Path) -> None:
    text, _, cut = read_tail(write_fan_out(tmp_path))
    assert not cut
    page = log_page("scan", text, True, None, None, 100)
    got = [(line.item, line.attempt, line.text) for line in page.lines]
    assert got == [
        (0, 1, "a0 line 1"),
        (0, 1, "a0 line 2"),
        (1, 2, "--- item 0 attempt 1 exited 0 ---"),  # prefixed: the job's text, kept
        (1, 2, "b2 unterminated"),
    ]
    assert page.pods == 2
    assert {line.pod for line in page.lines} == {"local:scan:0:1", "local:scan:1:2"}


def test_one_attempt_and_tail(tmp_path: Path) -> None:
    text, _, _ = read_tail(write_fan_out(tmp_path))
    page = log_page("scan", text, True, 1, 1, 100)
    assert [line.text for line in page.lines] == ["b1 line 1"]
    page = log_page("scan", text, True, 0, None, 1)
    assert [line.text for line in page.lines] == ["a0 line 2"]


def test_a_plain_nodes_attempts_and_a_bounded_read(tmp_path: Path) -> None:
    logs = NodeLogs(tmp_path)
    for attempt, words in ((1, ["x", "y"]), (2, ["z"])):
        log = logs.attempt("one", 0, attempt, fan_out=False)
        for word in words:
            log.write(word + "\n")
        log.end("exited 0")
    logs.close_all()
    text, offset, _ = read_tail(logs.path("one"))
    assert offset == logs.path("one").stat().st_size
    assert [line.text for line in log_page("one", text, False, None, None, 10).lines] == ["z"]
    assert [line.text for line in log_page("one", text, False, None, 1, 10).lines] == ["x", "y"]
    # Only the last bytes are read: the cut-off start is said, never a partial line.
    full = text.splitlines()
    text, _, cut = read_tail(logs.path("one"), limit=40)
    assert cut
    kept = text.splitlines()
    assert 0 < len(kept) < len(full)
    assert kept == full[-len(kept) :]
