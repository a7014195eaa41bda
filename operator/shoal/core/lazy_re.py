"""A regular expression compiled on its first use.

Python compiles a pattern in pure Python, so module-level `re.compile` calls are paid by
every process that imports the module, whether or not it ever matches: `shoal validate`
imports the expression compiler and the YAML reader, whose patterns together cost a
visible share of its start-up, while a typical file needs only a few of them.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` (issue 17)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

__all__ = ["LazyPattern"]


class LazyPattern:
    """`re.compile(pattern, flags)`, done when a method first needs it."""

    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, self.flags)
        return self._compiled

    def match(self, text: str) -> re.Match[str] | None:
        return self.compiled().match(text)

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self.compiled().fullmatch(text)

    def search(self, text: str) -> re.Match[str] | None:
        return self.compiled().search(text)

    def findall(self, text: str) -> list[Any]:
        return self.compiled().findall(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled().finditer(text)

    def sub(self, replacement: str, text: str) -> str:
        return self.compiled().sub(replacement, text)
