"""argparse's help formatter, told the terminal's width without importing `shutil`.

argparse builds a formatter for every `add_argument` (to check the metavar), and the
stock one asks `shutil.get_terminal_size()` for the width, so every command, `shoal
validate` and `--help` included, imported `shutil` (with `bz2`, `lzma` and `fnmatch`) just
to read one number. The same number is read here from `$COLUMNS` and the terminal.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["HelpFormatter", "terminal_columns"]

_FALLBACK_COLUMNS = 80
"""What `shutil.get_terminal_size` assumes when neither $COLUMNS nor a terminal says."""


def terminal_columns() -> int:
    """The width `shutil.get_terminal_size().columns` reports: $COLUMNS when it is a
    positive number, else the width of the terminal on standard output, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        columns = 0
    return columns or _FALLBACK_COLUMNS


class HelpFormatter(argparse.HelpFormatter):
    """The stock formatter, its default width taken from `terminal_columns`."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2  # as the stock formatter leaves a margin
        super().__init__(prog, indent_increment, max_help_position, width)
