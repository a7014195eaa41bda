"""The CLI's help formatter finds the width `shutil` would, without importing it
(`shoal/cli/help_width.py`): help text wraps exactly as argparse's stock formatter wraps it."""

from __future__ import annotations

import argparse
import shutil
import sys

import pytest

from shoal.cli.help_width import HelpFormatter, terminal_columns
from shoal.cli.main import build_parser


@pytest.mark.parametrize("columns", [None, "120", "0", "-5", "abc", " 90", ""])
@pytest.mark.parametrize("lines", [None, "40", "0"])
def test_the_width_is_the_one_shutil_reports(
    columns: str | None, lines: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("COLUMNS", columns), ("LINES", lines)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert terminal_columns() == shutil.get_terminal_size().columns


def test_without_a_standard_output_the_width_falls_back_as_shutil_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "__stdout__", None)
    assert terminal_columns() == shutil.get_terminal_size().columns == 80


def _validate_parser(stock: bool) -> argparse.ArgumentParser:
    parser = build_parser(["validate"])
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub: argparse.ArgumentParser = action.choices["validate"]
    if stock:
        sub.formatter_class = argparse.HelpFormatter
    assert sub.formatter_class is (argparse.HelpFormatter if stock else HelpFormatter)
    return sub


@pytest.mark.parametrize("columns", ["50", "80", "200"])
def test_help_wraps_as_with_the_stock_formatter(
    columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    ours, stock = build_parser(), build_parser()
    stock.formatter_class = argparse.HelpFormatter
    assert ours.format_help() == stock.format_help()
    ours_validate, stock_validate = _validate_parser(stock=False), _validate_parser(stock=True)
    assert "--templates PATH" in ours_validate.format_help()
    assert ours_validate.format_help() == stock_validate.format_help()
