"""What every SDK builder can do once built: render, validate, run locally, submit."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.sdk import render, run

if TYPE_CHECKING:
    from shoal.core.compiled import CompiledWorkflow
    from shoal.sdk.render import ResourceModel

__all__ = ["Resource"]


class Resource:
    """Mixin of the builders: each method works on `self.build()`."""

    def build(self) -> ResourceModel:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The manifest as data (apiVersion and kind included)."""
        return render.to_dict(self.build())

    def to_yaml(self) -> str:
        """The manifest as YAML text."""
        return render.to_yaml(self.build())

    def main(self, argv: Sequence[str] | None = None, *, templates: Sequence[Any] = ()) -> None:
        """A script's entry point: print the manifest (after `templates`, each a document
        of its own), or with `--run` run it on this machine and exit with its code."""
        if "--run" in (sys.argv[1:] if argv is None else argv):
            result = self.run_local(quiet=False, templates=templates)
            print(result.phase)
            sys.exit(result.exit_code)
        sys.stdout.write("---\n".join(t.to_yaml() for t in [*templates, self]))

    def validate(
        self, params: dict[str, Any] | None = None, templates: Sequence[Any] = ()
    ) -> CompiledWorkflow:
        """Compile as `shoal validate` does (references from `templates`); raises
        InvalidWorkflow."""
        return render.validate(self.build(), params, templates)

    def run_local(
        self,
        params: dict[str, Any] | None = None,
        *,
        imports: list[str] | None = None,
        workdir: Path | None = None,
        quiet: bool = True,
        templates: Sequence[Any] = (),
    ) -> run.LocalResult:
        """Run on this machine with `shoal run`, importing the jobs' modules."""
        return run.run_local(
            self, params, imports=imports, workdir=workdir, quiet=quiet, templates=templates
        )

    def submit(self, params: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        """Create in the cluster (see `shoal.sdk.submit` for the options)."""
        return run.submit(self, params, **options)
