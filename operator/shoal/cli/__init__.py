"""The `shoal` command line; `main` is its entry point (each command is a module of it)."""

__all__ = [
    "main",
]
