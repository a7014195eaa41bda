"""The CEL evaluator without the `cel` package's interactive shell.

`import cel` runs the package's `__init__`, which imports its REPL (typer,
prompt_toolkit, rich, pygments): about 0.1 s of CPU that every `shoal validate` and
every operator start would pay for nothing. Only the compiled extension `cel.cel`
(compile, Program, Context) is needed, so it is loaded straight from its file, under
its usual name; a later `import cel` elsewhere reuses it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["cel"]

EXTENSION = "cel.cel"


def load_evaluator() -> ModuleType:
    """`cel.cel`, loaded without executing `cel/__init__.py` (falls back to it)."""
    loaded = sys.modules.get(EXTENSION)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("cel")  # locates the package, runs none of it
    for folder in (package.submodule_search_locations or []) if package else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(folder) / f"cel{suffix}"
            if not path.is_file():
                continue
            spec = importlib.util.spec_from_file_location(EXTENSION, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[EXTENSION] = module
            spec.loader.exec_module(module)
            return module
    import cel.cel as whole  # an unexpected layout: the package's own import path

    return whole


if TYPE_CHECKING:
    from cel import cel
else:
    cel = load_evaluator()
