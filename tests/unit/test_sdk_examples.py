"""Every example in examples/ also exists as SDK code (`<name>_sdk.py` next to it), and
both give the same manifest: the SDK's rendering equals the YAML as `shoal validate`
parses it (issue 19 item 4; the runs are compared in tests/local/test_sdk_examples_run.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shoal.sdk import Workflow, parse_yaml, to_dict, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
YAML_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def sdk_twin(yaml_name: str) -> Path:
    """examples/retry-backoff.yaml -> examples/retry_backoff_sdk.py."""
    return EXAMPLES / (Path(yaml_name).stem.replace("-", "_") + "_sdk.py")


def load_sdk_templates(yaml_name: str) -> list[Any]:
    """The templates an SDK example defines beside its workflow (`templates`, if any)."""
    return list(getattr(load_sdk_module(yaml_name), "templates", []))


def load_sdk_workflow(yaml_name: str) -> Workflow:
    workflow = load_sdk_module(yaml_name).workflow
    assert isinstance(workflow, Workflow)
    return workflow


def load_sdk_module(yaml_name: str) -> ModuleType:
    """The `workflow` an SDK example defines, imported as its script would be (examples/
    on the path, for `from jobs import ...`), under a name of its own."""
    path = sdk_twin(yaml_name)
    spec = importlib.util.spec_from_file_location(f"sdk_example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def test_every_yaml_example_has_an_sdk_twin() -> None:
    missing = [name for name in YAML_EXAMPLES if not sdk_twin(name).is_file()]
    assert not missing


@pytest.mark.parametrize("name", YAML_EXAMPLES)
def test_the_sdk_twin_renders_the_manifest_of_the_yaml(name: str) -> None:
    workflow, templates = load_sdk_workflow(name), load_sdk_templates(name)
    documents = (EXAMPLES / name).read_text(encoding="utf-8").split("\n---\n")
    from_yaml = [to_dict(parse_yaml(text, name)) for text in documents]
    assert [to_dict(t) for t in templates] + [to_dict(workflow)] == from_yaml
    validate(workflow, templates=templates)  # and it compiles as `shoal validate` would


@pytest.mark.parametrize(
    "name",
    ["dag-diamond.yaml", "loops-param-result.yaml", "output-parameter.yaml", "coinflip.yaml"],
)
def test_the_argo_examples_carry_no_protocol_line(name: str) -> None:
    # Written as the Argo originals are: plain commands, no `@shoal/` line, no token.
    text = (EXAMPLES / name).read_text(encoding="utf-8") + sdk_twin(name).read_text("utf-8")
    assert "@shoal/" not in text
    assert "SHOAL_PROTOCOL_TOKEN" not in text
