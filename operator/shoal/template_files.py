"""Templates for local checks and runs: from `--templates` files or folders, and from the
other documents of the file being validated or run (docs/templates.md).

On a cluster the operator and the admission webhook read templates from the API server
(`kube/templates.py`); locally this module is the only source, so `shoal validate` and
`shoal run` resolve references exactly as the operator would, from the files given.
"""

from __future__ import annotations

from shoal.core.validation import InvalidWorkflow, Problem

TYPE_CHECKING = False  # `typing` and `pathlib` would cost `shoal validate` (issue 17)
if TYPE_CHECKING:  # imported where used: `shoal validate`'s parser reads TEMPLATES_HELP only
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from shoal.api.template import ClusterWorkflowTemplate, WorkflowTemplate
    from shoal.core.templates import Template, TemplateKey
    from shoal.manifests import Manifest

__all__ = [
    "TEMPLATES_HELP",
    "is_template",
    "load_templates",
    "not_runnable",
    "template_of",
    "templates_of",
]

SUFFIXES = (".yaml", ".yml")
TEMPLATES_HELP = (
    "a file or folder (*.yaml, *.yml) with WorkflowTemplates and ClusterWorkflowTemplates "
    "that templateRef and workflowTemplateRef may name; repeatable (templates among the "
    "documents given count too)"
)


def is_template(manifest: Manifest) -> bool:
    from shoal.api.template import ClusterWorkflowTemplate, WorkflowTemplate

    return isinstance(manifest.resource, WorkflowTemplate | ClusterWorkflowTemplate)


def template_of(resource: WorkflowTemplate | ClusterWorkflowTemplate) -> Template:
    """The resolver's view of a template resource (name, scope, spec, version)."""
    from shoal.api.template import ClusterWorkflowTemplate
    from shoal.core.templates import Template

    cluster = isinstance(resource, ClusterWorkflowTemplate)
    return Template(cluster, resource.metadata.name or "", resource.spec)


def templates_of(manifests: Iterable[Manifest]) -> dict[TemplateKey, Template]:
    """The template documents among `manifests`; a name defined twice is an error."""
    from shoal.api.template import ClusterWorkflowTemplate, WorkflowTemplate

    found: dict[TemplateKey, Template] = {}
    where: dict[TemplateKey, str] = {}
    problems: list[Problem] = []
    for manifest in manifests:
        resource = manifest.resource
        if not isinstance(resource, WorkflowTemplate | ClusterWorkflowTemplate):
            continue
        if not resource.metadata.name:
            problems.append(Problem(f"{resource.kind} in {manifest.source} has no metadata.name"))
            continue
        template = template_of(resource)
        if template.key in found and where[template.key] == manifest.source:
            continue  # the same file, given twice (`--templates f.yaml f.yaml`)
        if template.key in found:
            msg = f"{template.label} is defined twice: {where[template.key]} and {manifest.source}"
            problems.append(Problem(msg, field="metadata.name"))
            continue
        found[template.key] = template
        where[template.key] = manifest.source
    if problems:
        raise InvalidWorkflow(problems)
    return found


def _files(path: str) -> list[Path]:
    from pathlib import Path

    folder = Path(path)
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())
    return [folder]


def load_templates(
    paths: Sequence[str], also: Iterable[Manifest] = ()
) -> dict[TemplateKey, Template]:
    """Every template in the files and folders (`*.yaml`, `*.yml`, not recursive) of
    `paths`, plus those among `also`; other kinds in those files are ignored."""
    from shoal.manifests import load_file

    manifests: list[Manifest] = list(also)
    for path in paths:
        for file in _files(path):
            manifests.extend(load_file(file))
    return templates_of(manifests)


def not_runnable(manifest: Manifest) -> InvalidWorkflow:
    """The error for running a template itself: a Workflow instantiates it."""
    kind = manifest.resource.kind
    msg = (
        f"a {kind} does not run by itself; run a Workflow with "
        f"workflowTemplateRef: {{name: {manifest.resource.metadata.name}}}"
    )
    return InvalidWorkflow([Problem(msg, field="kind")], manifest.source)
