"""`shoal run`'s fast path: a plain Workflow compiled and run without pydantic.

Importing pydantic and building the models costs more than running a 50-node chain of
`true` (issue 17). So `shoal run` first asks this module, which compiles the file the way
`shoal validate`'s fast path does (`shoal.fast_validate.compile_document`: the generated
schema check, the shared rules, `core/validation` over a read-only view of the
document). The executor then runs that compiled workflow, whose spec and nodes are views.

It takes only what it can vouch for and whose run never needs a model: one Workflow
document in a file (`--import` modules allowed), no `--templates` or `--ui`, no approval gate
(`suspend`, `approvals`: their enums are compared by identity), no `memoize` (its status
is a model), plus everything `shoal validate`'s fast path leaves to the models (templates,
child workflows, `synchronization`). Anything else, and any problem or surprise, returns
None: the models' path then runs from the start, so its errors and output are unchanged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal.core.compiled import CompiledWorkflow

__all__ = ["NODE_FIELDS_LEFT_TO_THE_MODELS", "SPEC_FIELDS_LEFT_TO_THE_MODELS", "compile_for_run"]

NODE_FIELDS_LEFT_TO_THE_MODELS = ("suspend", "memoize")
"""Beyond `shoal validate`'s: a gate's default is compared by identity with its enum, which
a view (raw text) would fail; a memo's status is a pydantic model."""
SPEC_FIELDS_LEFT_TO_THE_MODELS = ("approvals",)
"""A spec's approvals are models in the run's state."""


def compile_for_run(args: argparse.Namespace, params: dict[str, Any]) -> CompiledWorkflow | None:
    """The compiled workflow, its YAML warnings printed, when this path takes the run; None
    (nothing printed) when the models must judge it (see the module's docstring).

    With `--import`, the job modules are imported as the models' path imports them; a
    module that cannot be imported is reported as there (InvalidWorkflow, after the
    warnings), and a job or argument problem is left to the models to locate."""
    from shoal.cli.common import STDIN

    if args.file == STDIN or args.templates or args.ui or args.ui_keep:
        return None
    try:
        compiled = _compile(args.file, args.name, params)
    except Exception:  # a problem, or any surprise: the models decide and word it
        return None
    if compiled is None:
        return None
    wf, warnings = compiled
    failed = None
    if args.imports:
        from shoal.core.validation import InvalidWorkflow

        try:
            _import_jobs(args.imports, args.file)
        except InvalidWorkflow as err:
            failed = err
        if failed is None and _job_problems(wf):
            return None
    for warning in warnings:
        print(warning, file=sys.stderr)
    if failed is not None:
        raise failed
    return wf


def _import_jobs(imports: list[str], path: str) -> None:
    """As `validate_command.check_jobs` imports them: beside the manifest first."""
    from shoal.job_check import import_jobs_for

    import_jobs_for(imports, Path(path).resolve().parent, path)


def _job_problems(wf: CompiledWorkflow) -> bool:
    from shoal.job_check import job_problems
    from shoal_worker import registry

    return bool(job_problems(wf, lambda name: registry.resolve(name).func))


def _compile(
    path: str, name: str | None, params: dict[str, Any]
) -> tuple[CompiledWorkflow, list[str]] | None:
    from shoal.fast_validate import compile_document, documents_of

    documents = documents_of(path)
    if len(documents) != 1:
        return None
    raw = documents[0].raw
    if not isinstance(raw, dict) or not _only_run_fields(raw.get("spec")):
        return None
    wf = compile_document(documents[0], path, params)
    if name is not None and name != wf.meta.name:
        return None
    return wf, [s.describe(path) for s in documents[0].surprises]


def _only_run_fields(spec: object) -> bool:
    """No field this path leaves to the models (read before the schema check: a wrong
    shape here is the schema check's to refuse, so only presence matters)."""
    from shoal.api.model_view import FIELDS

    if not isinstance(spec, dict) or spec.get("suspend"):
        return False
    if any(FIELDS["WorkflowSpec"][f][0] in spec for f in SPEC_FIELDS_LEFT_TO_THE_MODELS):
        return False
    nodes = spec.get("nodes")
    if not isinstance(nodes, list):
        return False
    wire = [FIELDS["Node"][f][0] for f in NODE_FIELDS_LEFT_TO_THE_MODELS]
    return all(isinstance(node, dict) and not any(w in node for w in wire) for node in nodes)
