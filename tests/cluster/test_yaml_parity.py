"""What `kubectl apply` stores is what `shoal validate`/`shoal run` read from the same file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoal.manifests import load_file
from tests.support.plugin import Kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]

# Keys and values that YAML 1.1 (kubectl) and YAML 1.2 (editors, PyYAML's strings) read
# differently, in a node's free-form args, where the API server keeps whatever it is sent;
# and a node made from another by a merge key (`<<: *a`), which kubectl expands.
TRICKY = """\
apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata:
  name: parity
spec:
  image: worker:1
  nodes:
    - &a
      name: a
      job: j
      args:
        n: 1
        y: 2
        "on": off
        values: [yes, no, On, OFF, 0755, 0o17, 0x1F, 0b101, 1_000, 08, 1e3, .5]
        strings: [2024-01-01, "2024-01-01T10:00:00Z", 1:30, nope, "y", ~]
    - <<: *a
      name: b
      dependsOn: [a]
"""


def test_the_stored_spec_is_the_spec_shoal_read(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / "parity.yaml"
    path.write_text(TRICKY, encoding="utf-8")
    # Server-side dry run: the object exactly as the API server would store it.
    stored = json.loads(
        kubectl(
            "apply", "--dry-run=server", "-o", "json", "-f", str(path), namespace=namespace
        ).stdout
    )
    (manifest,) = load_file(path)
    assert manifest.document is not None
    assert stored["spec"] == manifest.document.raw["spec"]
    assert stored["spec"]["nodes"][0]["args"]["false"] == 1  # `n:` is the key "false"
    assert stored["spec"]["nodes"][1]["args"] == stored["spec"]["nodes"][0]["args"]  # merged
    # Every scalar whose reading differs was named, with its line.
    assert [w.split(": warning: ")[0] for w in manifest.warnings][:3] == [
        f"{path}:12:9",
        f"{path}:13:9",
        f"{path}:14:15",
    ]
