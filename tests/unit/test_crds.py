"""The generated CRDs: up to date, structural, and agreeing with the models.

Without an API server, documents are checked by a small emulation of its create path
(null pruning, strict unknown-field checks, the OpenAPI schema via `jsonschema`, list-type
uniqueness, then every CEL rule via the `cel` module). Every bad document must also be
rejected by the models or the operator's validation, so the CRD never forbids what Shoal
accepts or vice versa. When a Go toolchain with the Kubernetes modules is present, the
same documents go through the API server's own code (hack/crdcheck) as well.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cel
import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from shoal.api import crd
from shoal.api.cron import CronWorkflow
from shoal.api.workflow import Workflow
from shoal.core.compiled import WorkflowMeta
from shoal.core.validation import InvalidWorkflow, compile_workflow

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
DOCS = ROOT / "docs" / "api.md"
CRDCHECK = ROOT / "hack" / "crdcheck"
EXAMPLE_FILES = sorted((ROOT / "examples").glob("*.yaml"))
KINDS = {kind.name: kind for kind in crd.KINDS}
MODELS: dict[str, type[Workflow] | type[CronWorkflow]] = {
    "Workflow": Workflow,
    "CronWorkflow": CronWorkflow,
}
Doc = dict[str, Any]


def load_schema(kind: str) -> Doc:
    """The schema as committed in crds/, which is what `kubectl apply` installs."""
    manifest = yaml.safe_load((CRD_DIR / f"{KINDS[kind].crd_name}.yaml").read_text())
    schema: Doc = manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: Doc, path: str = "") -> Iterator[tuple[str, Doc]]:
    """Every sub-schema with a readable path (`.spec.nodes[]`, `.status.nodes{}`)."""
    yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from walk(prop, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


# --- 1. up to date and deterministic ------------------------------------------------------


def test_committed_files_are_up_to_date() -> None:
    stale = crd.stale(crd.generate(CRD_DIR, DOCS))
    assert not stale, f"out of date: {[str(p) for p in stale]}; run `make crds`"


def test_generation_is_deterministic() -> None:
    assert crd.generate(CRD_DIR, DOCS) == crd.generate(CRD_DIR, DOCS)


def test_check_names_the_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(tmp_path / "crds"), "--docs", str(tmp_path / "api.md")]
    assert crd.main(args) == 0
    assert crd.main([*args, "--check"]) == 0
    target = tmp_path / "crds" / "workflows.shoal.dev.yaml"
    target.write_text(target.read_text().replace("maxItems: 1000", "maxItems: 10"))
    capsys.readouterr()
    assert crd.main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{target} is out of date" in err
    assert "run `make crds`" in err.lower()
    assert "cronworkflows.shoal.dev.yaml is out of date" not in err


def test_docs_keep_the_hand_written_intro(tmp_path: Path) -> None:
    page = tmp_path / "api.md"
    page.write_text(f"# Mine\n\nHand-written.\n\n{crd.DOCS_MARKER}\nstale reference\n")
    text = crd.generate(tmp_path, page)[page]
    assert text.startswith("# Mine\n\nHand-written.\n\n" + crd.DOCS_MARKER)
    assert "stale reference" not in text
    assert "| `dependsOn` | list of string" in text
    assert "- `onSuccess`: Every dependency Succeeded" in text


# --- 2. structural ------------------------------------------------------------------------

FORBIDDEN_KEYS = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "title", "const"}
# Defaults and `nullable` are left out on purpose (see shoal.api.crd's docstring).
FORBIDDEN_KEYS |= {"default", "nullable"}


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    for path, schema in walk(load_schema(kind)):
        assert not FORBIDDEN_KEYS & schema.keys(), (path, FORBIDDEN_KEYS & schema.keys())
        untyped = "x-kubernetes-preserve-unknown-fields" in schema or (
            "x-kubernetes-int-or-string" in schema
        )
        assert "type" in schema or untyped, f"{path} has no type"
        assert not ("properties" in schema and "additionalProperties" in schema), path
        for flag in ("exclusiveMinimum", "exclusiveMaximum"):
            assert schema.get(flag, True) is True, f"{path}: OpenAPI v3 {flag} is a flag"
        if schema.get("x-kubernetes-list-type") == "map":
            keys = schema["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(schema["items"].get("required", [])), path


@pytest.mark.parametrize("kind", KINDS)
def test_root_fields(kind: str) -> None:
    props = load_schema(kind)["properties"]
    assert props["metadata"] == {"type": "object"}
    assert props["apiVersion"]["type"] == props["kind"]["type"] == "string"
    if kind.endswith("WorkflowTemplate"):
        assert "status" not in props  # a template is a spec only: nothing observes it
        return
    status = props["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert all("type" in p for p in status["properties"].values())


@pytest.mark.parametrize("kind", KINDS)
def test_cel_rules_only_read_typed_fields(kind: str) -> None:
    """The API server hides untyped fields from CEL; a rule reading one fails to compile."""
    for path, schema in walk(load_schema(kind)):
        for rule in schema.get("x-kubernetes-validations", []):
            for name in re.findall(r"\bself\.(\w+)", rule["rule"]):
                prop = schema["properties"].get(name, {})
                assert "type" in prop, f"{path}: {rule['rule']!r} reads untyped {name!r}"


def test_rule_costs_are_bounded() -> None:
    """CEL cost estimates need maxItems/maxLength on every list and string a rule scans."""
    node = load_schema("Workflow")["properties"]["spec"]["properties"]["nodes"]
    assert node["maxItems"] == 1000
    depends_on = node["items"]["properties"]["dependsOn"]
    assert depends_on["maxItems"] == 1000
    assert depends_on["items"]["maxLength"] == node["items"]["properties"]["name"]["maxLength"]


# --- 3 and 4. documents: emulated API server create path -----------------------------------


def _strict(schema: Doc) -> Doc:
    """The CRD schema as Draft 4 JSON Schema, with `kubectl`'s strict field validation."""
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if schema.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if "properties" in schema:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if "items" in schema:
        out["items"] = _strict(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(schema["additionalProperties"])
    return out


def _prune_nulls(value: Any, schema: Doc) -> Any:
    """Drop `null`s of declared, non-nullable fields, as the API server does on write."""
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        return {
            k: _prune_nulls(v, props.get(k, {}))
            for k, v in value.items()
            if not (v is None and k in props)
        }
    if isinstance(value, list) and "items" in schema:
        return [_prune_nulls(v, schema["items"]) for v in value]
    return value


def _list_map_errors(value: Any, schema: Doc, path: str) -> list[str]:
    errors = []
    if isinstance(value, list) and schema.get("x-kubernetes-list-type") == "map":
        keys = [tuple(item.get(k) for k in schema["x-kubernetes-list-map-keys"]) for item in value]
        errors += [f"{path}: Duplicate value: {k}" for k in {k for k in keys if keys.count(k) > 1}]
    for child_value, child_schema, child_path in _children(value, schema, path):
        errors += _list_map_errors(child_value, child_schema, child_path)
    return errors


def _cel_errors(value: Any, schema: Doc, path: str) -> list[str]:
    errors = []
    for rule in schema.get("x-kubernetes-validations", []) if isinstance(value, dict) else []:
        try:
            ok = cel.evaluate(rule["rule"], {"self": value})
        except Exception as err:  # the API server reports evaluation errors as failures
            ok = f"error: {err}"
        if ok is not True:
            errors.append(f"{path}{rule.get('fieldPath', '')}: {rule['message']}")
    for child_value, child_schema, child_path in _children(value, schema, path):
        errors += _cel_errors(child_value, child_schema, child_path)
    return errors


def _children(value: Any, schema: Doc, path: str) -> Iterator[tuple[Any, Doc, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            sub = schema.get("properties", {}).get(key) or schema.get("additionalProperties")
            if isinstance(sub, dict):
                yield child, sub, f"{path}.{key}"
    elif isinstance(value, list) and "items" in schema:
        for index, child in enumerate(value):
            yield child, schema["items"], f"{path}[{index}]"


def api_errors(doc: Doc) -> list[str]:
    """What the API server would say when this document is created (empty: accepted)."""
    schema = load_schema(doc["kind"])
    doc = _prune_nulls(copy.deepcopy(doc), schema)
    validator = jsonschema.Draft4Validator(_strict(schema))
    errors = [
        f"{''.join(f'.{p}' if isinstance(p, str) else f'[{p}]' for p in e.absolute_path)}: "
        f"{e.message}"
        for e in validator.iter_errors(doc)
    ]
    errors += _list_map_errors(doc, schema, "")
    return errors or _cel_errors(doc, schema, "")


def operator_errors(doc: Doc) -> list[str]:
    """What the models and the operator's validation say about the same document."""
    try:
        resource = MODELS[doc["kind"]].model_validate(doc)
    except ValidationError as err:
        return [str(err)]
    spec = resource.spec if isinstance(resource, Workflow) else resource.spec.workflow_spec
    try:
        compile_workflow(spec, WorkflowMeta(name="test"))
    except InvalidWorkflow as err:
        return [str(err)]
    return []


# Representative documents that use every field, so no part of the schema goes untested.
FULL_WORKFLOW: Doc = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "full", "labels": {"team": "data"}},
    "spec": {
        "image": "registry.example.com/acme/jobs:1.4.2",
        "parameters": {"region": "eu-west", "nested": {"any": [1, None, "json"]}},
        "parallelism": 20,
        "activeDeadlineSeconds": 3600,
        "ttlSecondsAfterFinished": 86400,
        "stop": False,
        "defaults": {
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 1}},
            "env": [
                {"name": "MODE", "value": "batch"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "timeoutSeconds": 600,
            "retries": {"limit": 2, "backoffSeconds": 10, "factor": 2, "maxBackoffSeconds": 300},
            "nodeSelector": {"pool": "batch"},
            "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
            "serviceAccountName": "runner",
        },
        "nodes": [
            {"name": "markets", "job": "market-finder", "args": {"region": "${{ params.region }}"}},
            {"name": "data-proxy", "job": "data-proxy", "when": None},
            {
                "name": "integration",
                "job": "integration",
                "dependsOn": ["markets", "data-proxy"],
                "forEach": "${{ nodes.markets.outputs.market_ids }}",
                "itemArg": "market",
                "parallelism": 5,
                "failFast": False,
                "retries": {"limit": 2},
            },
            {
                "name": "publish",
                "job": "publish",
                "dependsOn": ["integration"],
                "when": "nodes.integration.outputs.count > 0",
                "forEach": [{"shard": 1}, {"shard": 2}],
                "itemArg": "shard",
            },
            {
                "name": "notify",
                "image": "curlimages/curl:8.10.1",
                "command": ["sh", "-c", "echo done"],
                "args": ["--verbose"],
                "dependsOn": ["publish"],
                "runPolicy": "always",
            },
            {"name": "bare-image", "image": "busybox:1.36", "dependsOn": ["notify"]},
        ],
    },
    "status": {
        "phase": "Running",
        "progress": "3/6",
        "nodes": {
            "markets": {"phase": "Succeeded", "attempts": 1, "outputs": {"market_ids": [1, 2]}},
            "integration": {
                "phase": "Running",
                "items": {"total": 120, "succeeded": 80, "running": 5, "failed": 1},
                "failedItems": [{"index": 7, "message": "boom"}],
            },
        },
    },
}

FULL_CRON: Doc = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "CronWorkflow",
    "metadata": {"name": "nightly"},
    "spec": {
        "schedule": ["0 2 * * *", "30 14 * * 1-5"],
        "timezone": "Europe/Berlin",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 300,
        "catchUp": {"policy": "all", "maxRuns": 5},
        "suspend": False,
        "successfulRunsHistoryLimit": 5,
        "failedRunsHistoryLimit": 2,
        "parameters": {"day": "today"},
        "poll": {
            "url": "https://example.com/feed.json",
            "intervalSeconds": 120,
            "headersFrom": {"name": "feed", "key": "headers"},
            "fireOn": "change",
            "condition": "response.status == 200",
            "timeoutSeconds": 5,
            "maxBodyBytes": 1024,
        },
        "after": {"cronWorkflow": "upstream", "phases": ["Succeeded", "Failed"]},
        "workflowSpec": {"parameters": {"day": ""}, "nodes": [{"name": "run", "job": "nightly"}]},
    },
    "status": {"lastScheduleTime": "2026-01-01T02:00:00Z", "active": ["nightly-1"], "fireCount": 3},
}

MINIMAL_CRON: Doc = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "CronWorkflow",
    "metadata": {"name": "hourly"},
    "spec": {"schedule": "0 * * * *", "workflowSpec": {"nodes": [{"name": "a", "image": "x"}]}},
}

GOOD_DOCS = {"full-workflow": FULL_WORKFLOW, "full-cron": FULL_CRON, "minimal-cron": MINIMAL_CRON}


def example_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.mark.parametrize("name", GOOD_DOCS)
def test_representative_documents_are_accepted(name: str) -> None:
    doc = GOOD_DOCS[name]
    assert operator_errors(doc) == []
    assert api_errors(doc) == []


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_examples_are_accepted(path: Path) -> None:
    docs = example_docs(path)
    assert docs, f"{path.name} holds no document"
    for doc in docs:
        assert doc.get("kind") in KINDS, f"{path.name}: not a Shoal resource: {doc.get('kind')}"
        assert api_errors(doc) == [], path.name


def _workflow(*nodes: Doc, **spec: Any) -> Doc:
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "bad"},
        "spec": {"image": "img", "nodes": list(nodes) or [{"name": "a", "job": "j"}], **spec},
    }
    return doc


def _cron(**spec: Any) -> Doc:
    doc = copy.deepcopy(MINIMAL_CRON)
    doc["spec"].update(spec)
    return doc


def _node(**fields: Any) -> Doc:
    return {"name": "a", "job": "j", **fields}


# (document, where the error points, what it says); each mistake only once per document.
SCHEMA_MISTAKES: dict[str, tuple[Doc, str, str]] = {
    "typo-in-field-name": (_workflow(_node(dependOn=["b"])), ".spec.nodes[0]", "dependOn"),
    "node-name-not-a-dns-label": (_workflow(_node(name="Fetch_Data")), "].name", "match"),
    "node-name-too-long": (_workflow(_node(name="a" * 64)), "].name", "too long"),
    "parallelism-zero": (_workflow(parallelism=0), ".spec.parallelism", "minimum"),
    "retry-limit-too-high": (
        _workflow(_node(retries={"limit": 101})),
        ".retries.limit",
        "maximum",
    ),
    "zero-timeout": (_workflow(_node(timeoutSeconds=0)), ".timeoutSeconds", "minimum"),
    "unknown-run-policy": (_workflow(_node(runPolicy="sometimes")), ".runPolicy", "one of"),
    "quantity-not-int-or-string": (
        _workflow(_node(resources={"requests": {"cpu": [1]}})),
        ".requests.cpu",
        "not of type",
    ),
    "dependency-name-too-long": (
        _workflow(_node(), _node(name="b", dependsOn=["a" * 64])),
        ".dependsOn[0]",
        "too long",
    ),
    "duplicate-node-names": (_workflow(_node(), _node()), ".spec.nodes", "Duplicate value"),
    "duplicate-dependency": (
        _workflow(_node(), _node(name="b", dependsOn=["a", "a"])),
        ".dependsOn",
        "non-unique",
    ),
    "cron-unknown-concurrency-policy": (
        _cron(concurrencyPolicy="Sometimes"),
        ".concurrencyPolicy",
        "one of",
    ),
    "cron-poll-url-not-http": (_cron(poll={"url": "ftp://x"}), ".poll.url", "match"),
}

NODES_OR_TEMPLATE = "set `nodes` (at least one) or `workflowTemplateRef`, not both"
CEL_MISTAKES: dict[str, tuple[Doc, str, str]] = {
    "no-nodes": (_workflow(nodes=[]), ".spec.nodes", NODES_OR_TEMPLATE),
    "missing-nodes": ({**_workflow(), "spec": {"image": "img"}}, ".spec.nodes", NODES_OR_TEMPLATE),
    "nodes-and-template": (
        {**_workflow(), "spec": {**_workflow()["spec"], "workflowTemplateRef": {"name": "t"}}},
        ".spec.nodes",
        NODES_OR_TEMPLATE,
    ),
    "job-and-command": (
        _workflow(_node(command=["sh"])),
        ".spec.nodes[0]",
        "set either `job` or `command`, not both",
    ),
    "neither-job-nor-container": (
        _workflow({"name": "a", "args": ["x"]}),
        ".spec.nodes[0]",
        "set `job` (a registered job), `command`/`image` (a container), "
        "`suspend`, `workflow` or `templateRef`",
    ),
    "depends-on-itself": (
        _workflow(_node(dependsOn=["a"])),
        ".spec.nodes[0].dependsOn",
        "a node cannot depend on itself",
    ),
    "after-both-sources": (
        _cron(after={"workflow": "w", "cronWorkflow": "c"}),
        ".spec.after",
        "set exactly one of `workflow` or `cronWorkflow`",
    ),
    "after-no-source": (
        _cron(after={"phases": ["Failed"]}),
        ".spec.after",
        "set exactly one of `workflow` or `cronWorkflow`",
    ),
}


@pytest.mark.parametrize("case", SCHEMA_MISTAKES)
def test_schema_rejects_mistakes(case: str) -> None:
    doc, where, what = SCHEMA_MISTAKES[case]
    errors = api_errors(doc)
    assert any(where in e and what in e for e in errors), errors
    assert operator_errors(doc), "the CRD rejects what the operator accepts"


@pytest.mark.parametrize("case", CEL_MISTAKES)
def test_cel_rules_reject_mistakes(case: str) -> None:
    doc, where, message = CEL_MISTAKES[case]
    assert api_errors(doc) == [f"{where}: {message}"]
    assert operator_errors(doc), "the CRD rejects what the operator accepts"


def test_every_cel_rule_has_a_failing_case() -> None:
    messages = {message for _, _, message in CEL_MISTAKES.values()}
    rules = {rule.message for rules in crd.RULES.values() for rule in rules}
    assert rules == messages


def _with_newer_status() -> Doc:
    doc = copy.deepcopy(FULL_WORKFLOW)
    doc["status"]["addedByANewerOperator"] = {"kept": True}
    return doc


def test_status_keeps_fields_it_does_not_know() -> None:
    """A downgraded operator must not make the API server drop a newer status field."""
    assert api_errors(_with_newer_status()) == []


def test_explicit_nulls_mean_unset() -> None:
    """`job: null` is pruned by the API server, so `has(self.job)` stays false."""
    doc = _workflow({"name": "a", "image": "img", "job": None, "command": ["true"]})
    assert api_errors(doc) == []
    assert operator_errors(doc) == []


# --- the API server's own code (hack/crdcheck) ---------------------------------------------


def _crdcheck_binary() -> Path:
    """Build hack/crdcheck through the Go module proxy, cached by its go.sum.

    The cache lives outside the repository, so every clone on a machine shares it; a lock
    serialises the pytest-xdist workers that may ask for it at the same moment.
    """
    go = shutil.which("go")
    if go is None:
        _unavailable("no Go toolchain on PATH (hack/crdcheck needs Go >= 1.26)")
    key = hashlib.sha256(
        b"".join((CRDCHECK / f).read_bytes() for f in ("go.mod", "go.sum", "main.go"))
    ).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shoal" / "crdcheck"
    binary = cache / key / "crdcheck"
    binary.parent.mkdir(parents=True, exist_ok=True)
    with (binary.parent / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            env = {**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -buildvcs=false"}
            tmp = binary.with_suffix(".tmp")
            proc = subprocess.run(
                [go, "build", "-trimpath", "-o", str(tmp), "."],
                cwd=CRDCHECK,
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            if proc.returncode != 0:
                _unavailable(f"building hack/crdcheck failed:\n{proc.stderr[-3000:]}")
            tmp.rename(binary)
    return binary


def _unavailable(reason: str) -> None:
    """Under CI a missing check is a failure, never a skip: a skipped check is untested."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def crdcheck() -> Callable[..., str]:
    """Run the API server's own validation code (hack/crdcheck) on CRDs and documents."""
    binary = _crdcheck_binary()

    def run(*args: str) -> str:
        proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    return run


@pytest.mark.timeout(900)
def test_api_server_accepts_the_crds(crdcheck: Callable[..., str]) -> None:
    paths = [str(CRD_DIR / f"{kind.crd_name}.yaml") for kind in crd.KINDS]
    report = crdcheck("crd", *paths)
    totals = [int(m) for m in re.findall(r" = (\d+) ", report)]
    rules = [
        r
        for k in KINDS
        for _, s in walk(load_schema(k))
        for r in s.get("x-kubernetes-validations", [])
    ]
    assert len(totals) == len(rules)
    assert max(totals) < 2_000_000  # of 100M per CRD: room for more rules


def _server_verdicts(crdcheck: Callable[..., str], docs: dict[str, Doc], tmp: Path) -> dict:
    """Each document's errors according to the API server's code, by document name."""
    named = [{**copy.deepcopy(d), "metadata": {"name": name}} for name, d in docs.items()]
    (tmp / "docs.yaml").write_text(yaml.safe_dump_all(named))
    verdicts = {}
    for kind in crd.KINDS:
        out = crdcheck("cr", str(CRD_DIR / f"{kind.crd_name}.yaml"), str(tmp / "docs.yaml"))
        verdicts.update({r["name"]: r for r in map(json.loads, out.splitlines())})
    assert verdicts.keys() == docs.keys()
    return verdicts


@pytest.mark.timeout(900)
def test_api_server_agrees_on_documents(crdcheck: Callable[..., str], tmp_path: Path) -> None:
    examples = {p.stem + str(i): d for p in EXAMPLE_FILES for i, d in enumerate(example_docs(p))}
    good = {**GOOD_DOCS, **examples, "newer-status": _with_newer_status()}
    bad = {name: case[0] for name, case in {**SCHEMA_MISTAKES, **CEL_MISTAKES}.items()}
    verdicts = _server_verdicts(crdcheck, {**good, **bad}, tmp_path)
    for name in good:
        assert verdicts[name]["errors"] == [], name
    for name in bad:
        assert verdicts[name]["errors"], f"{name} accepted by the API server"
    for name, (_, _, message) in CEL_MISTAKES.items():
        assert any(message in e for e in verdicts[name]["errors"]), verdicts[name]


@pytest.mark.timeout(900)
def test_largest_workflow_fits_the_cel_runtime_budget(
    crdcheck: Callable[..., str], tmp_path: Path
) -> None:
    names = [f"n{i:04d}-" + "x" * 57 for i in range(999)]
    nodes = [_node(name=n, dependsOn=names[max(0, i - 1) : i]) for i, n in enumerate(names)]
    nodes.append({"name": "join", "job": "j", "dependsOn": names})
    verdict = _server_verdicts(crdcheck, {"largest": _workflow(*nodes)}, tmp_path)["largest"]
    assert verdict["errors"] == []
    assert verdict["celCost"] < 1_000_000  # of the 10M runtime budget per object
