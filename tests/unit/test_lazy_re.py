"""`LazyPattern` (core/lazy_re.py) matches as `re.compile` does, compiling on first use only:
module-level patterns of the validator cost nothing until a manifest needs them."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from shoal.core.lazy_re import LazyPattern

TEXT = "nodes.a and nodes['b-c'] then\nnodes.d"


@pytest.mark.parametrize(
    ("pattern", "flags"),
    [
        (r"nodes\s*\.\s*([a-z]+)", 0),
        (r"\[\s*(['\"])(.*?)\1\s*\]", 0),
        (r"^.*?then.nodes", re.DOTALL),
    ],
)
def test_every_method_answers_as_the_compiled_pattern(pattern: str, flags: int) -> None:
    lazy, compiled = LazyPattern(pattern, flags), re.compile(pattern, flags)
    assert lazy._compiled is None
    for name in ("match", "fullmatch", "search"):
        ours, theirs = getattr(lazy, name)(TEXT), getattr(compiled, name)(TEXT)
        assert (ours and ours.group(0)) == (theirs and theirs.group(0))
    assert lazy.findall(TEXT) == compiled.findall(TEXT)
    assert [m.span() for m in lazy.finditer(TEXT)] == [m.span() for m in compiled.finditer(TEXT)]
    assert lazy.sub("X", TEXT) == compiled.sub("X", TEXT)
    assert lazy.compiled() is lazy.compiled()  # compiled once


PROBE = """
from shoal import yamlread
from shoal.core import expressions
from shoal.core.lazy_re import LazyPattern
found = [v for m in (expressions, yamlread) for v in vars(m).values() if isinstance(v, LazyPattern)]
print(len(found), sum(v._compiled is not None for v in found))
"""


def test_importing_the_expression_compiler_and_yaml_reader_compiles_no_pattern() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    patterns, compiled = map(int, done.stdout.split())
    assert (patterns >= 15, compiled) == (True, 0)
