"""`shoal run`'s plain final table (local/plain_table.py) reads as the rich table it
replaces off a terminal: same columns, rules and wrapping of long messages, and no
control character of a child's output reaches the screen."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from shoal.local.plain_table import COLUMNS, shown, table_lines

ROWS = [
    [
        "hello",
        "Failed",
        "",
        "",
        "0.1s",
        "unknown job 'greet' Known jobs: shoal.echo, shoal.fail, shoal.noop, shoal.sleep",
    ],
    ["goodbye", "Omitted", "", "", "", "not run: dependency 'hello' Failed"],
    ["each", "Succeeded", "4/4", "1 retry", "2.0s", ""],
]


def rich_lines(rows: list[list[str]], width: int) -> list[str]:
    """What the rich table of local/tables.py printed for the same cells."""
    table = Table(expand=False, show_edge=False)
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out = io.StringIO()
    Console(file=out, width=width, no_color=True, highlight=False).print(table)
    return [line.rstrip() for line in out.getvalue().splitlines()]


def test_short_rows_are_laid_out_as_rich_laid_them_out() -> None:
    rows = [ROWS[2], ["n1", "Succeeded", "", "", "0.0s", ""]]
    assert [line.rstrip() for line in table_lines(COLUMNS, rows, 80)] == rich_lines(rows, 80)


def test_a_long_message_wraps_at_words_within_the_width() -> None:
    lines = table_lines(COLUMNS, ROWS, 80)
    assert max(len(line) for line in lines) <= 80
    assert [line.rstrip() for line in lines] == rich_lines(ROWS, 80)
    message = " ".join(line.split("│")[-1].strip() for line in lines[2:5])
    assert message == ROWS[0][5].strip()


def test_a_failure_frame_starts_its_own_line_in_the_cell() -> None:
    lines = table_lines(
        COLUMNS, [["boom", "Failed", "", "", "0.1s", "ValueError: x\nat f.py:9"]], 80
    )
    assert [line.split("│")[-1].strip() for line in lines[2:]] == ["ValueError: x", "at f.py:9"]


def test_control_characters_that_rewrite_the_screen_are_dropped() -> None:
    assert shown("ok\rFAKE\x08\x07\x0b\x0c line") == "okFAKE line"
