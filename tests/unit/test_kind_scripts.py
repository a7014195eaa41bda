"""hack/kind-up.sh and hack/kind-down.sh parse (they need Docker and kind to run).

No Docker engine exists on the test machines, so the scripts are never executed here:
`bash -n` catches syntax errors, and any warning (an unterminated here-document, say)
counts as one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["hack/kind-up.sh", "hack/kind-down.sh"])
def test_script_parses(script: str) -> None:
    proc = subprocess.run(
        ["bash", "-n", str(REPO / script)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert not proc.stderr, proc.stderr
    assert "NOT RUN" in (REPO / script).read_text(), "say in the header that CI never runs it"


def test_kind_config_and_dev_manifests_parse() -> None:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster"
    for path in sorted((REPO / "hack" / "dev").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert docs, path
        for doc in docs:
            assert doc["metadata"]["namespace"] == "shoal-dev", path
