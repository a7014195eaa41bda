"""`POST /api/v1/workflows/{namespace}`: submit a manifest (YAML or JSON), validated first.

The body goes through the same reader and compiler as `shoal validate` (kubectl's YAML
reading, the schema, the DAG, the expressions), so an invalid manifest gets the same
problems, each with its node and field, as a 422, and nothing is created.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Request

from shoal.api.cron import CronWorkflow
from shoal.api.limits import MAX_JSON_BYTES
from shoal.core.templates import TemplatesNeeded
from shoal.core.validation import InvalidWorkflow, Problem
from shoal.cron.runs import cronworkflows_path
from shoal.kube.api import KubeApi, workflows_path
from shoal.manifests import Manifest, compile_manifest, parse_document, yaml_depth_problem
from shoal.server.errors import ApiProblem, invalid_manifest
from shoal.server.identity import caller_api
from shoal.server.models import ActionResult, meta
from shoal.server.params import Namespace
from shoal.server.workflows import ERRORS, call
from shoal.template_files import is_template, not_runnable
from shoal.yamlread import load_documents

__all__ = ["MAX_BODY_BYTES", "read_manifest", "router"]

MAX_BODY_BYTES = MAX_JSON_BYTES
SOURCE = "request"
router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], responses=ERRORS)
BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "one Workflow or CronWorkflow manifest",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


async def _body(request: Request) -> str:
    """The request body as text, refused past `MAX_BODY_BYTES` without reading it all."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiProblem.of(413, "TooLarge", f"a manifest is at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as err:
        raise invalid_manifest(InvalidWorkflow([Problem(f"not UTF-8: {err.reason}")])) from None


def read_manifest(text: str, namespace: str) -> Manifest:
    """One manifest, validated and compiled as `shoal validate` does, in `namespace`."""
    try:
        if (too_deep := yaml_depth_problem(text)) is not None:
            raise InvalidWorkflow([Problem(too_deep)], SOURCE)
        documents = load_documents(text, SOURCE)
    except yaml.YAMLError as err:
        message = f"not valid YAML or JSON: {getattr(err, 'problem', None) or err}"
        raise invalid_manifest(InvalidWorkflow([Problem(message)], SOURCE)) from None
    except InvalidWorkflow as err:
        raise invalid_manifest(err) from None
    if len(documents) != 1:
        problem = Problem(f"expected one manifest, got {len(documents)}")
        raise invalid_manifest(InvalidWorkflow([problem], SOURCE))
    document = documents[0]
    raw = document.raw
    if isinstance(raw, dict):
        stated = (raw.get("metadata") or {}).get("namespace")
        if stated not in (None, namespace):
            problem = Problem(f"is {stated!r}, not {namespace!r}", field="metadata.namespace")
            raise invalid_manifest(InvalidWorkflow([problem], SOURCE))
    try:
        manifest = Manifest(parse_document(raw, SOURCE), SOURCE, document)
        if is_template(manifest):
            raise not_runnable(manifest)
        with contextlib.suppress(TemplatesNeeded):  # the webhook and operator resolve them
            compile_manifest(manifest)
    except InvalidWorkflow as err:
        raise invalid_manifest(err) from None
    return manifest


@router.post(
    "/{namespace}",
    status_code=201,
    response_model=ActionResult,
    response_model_by_alias=True,
    openapi_extra=BODY_DOC,
)
async def submit(
    request: Request, namespace: Namespace, api: Annotated[KubeApi, Depends(caller_api)]
) -> ActionResult:
    """Validate, then create the Workflow (or CronWorkflow) as the caller."""
    manifest = read_manifest(await _body(request), namespace)
    assert manifest.document is not None
    raw: dict[str, Any] = dict(manifest.document.raw)
    raw["metadata"] = {**(raw.get("metadata") or {}), "namespace": namespace}
    is_cron = isinstance(manifest.resource, CronWorkflow)
    path = cronworkflows_path(namespace) if is_cron else workflows_path(namespace)
    created = await call(api, "POST", path, body=raw)
    kind = "CronWorkflow" if is_cron else "Workflow"
    return ActionResult(metadata=meta(created), message=f"{kind} created")
