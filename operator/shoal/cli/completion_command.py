"""`shoal completion SHELL`: a completion script for bash, zsh or fish, on stdout.

The script is generated from the parsers themselves by `shtab`, so it can never drift
from the commands and flags. This module (and shtab) is loaded by this command only:
`shoal --help` and every other command start without it.
"""

from __future__ import annotations

import argparse

from shoal.cli.common import EXIT_OK, out

__all__ = ["SHELLS", "completion", "configure", "full_parser"]

SHELLS = ("bash", "zsh", "fish")


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal completion`'s arguments and handler."""
    p.description = (
        "Print a shell completion script for every command and flag. "
        'bash: eval "$(shoal completion bash)" in ~/.bashrc; zsh: shoal completion zsh > '
        "~/.zfunc/_shoal (a folder on $fpath); fish: shoal completion fish > "
        "~/.config/fish/completions/shoal.fish."
    )
    p.add_argument("shell", choices=SHELLS, help="bash, zsh or fish")
    p.set_defaults(handler=completion)


def full_parser() -> argparse.ArgumentParser:
    """`shoal`'s parser with every command's arguments (what completion describes)."""
    from shoal.cli.main import build_parser

    return build_parser(everything=True)


def completion(args: argparse.Namespace) -> int:
    import shtab

    out(shtab.complete(full_parser(), shell=args.shell).rstrip("\n"))
    return EXIT_OK
