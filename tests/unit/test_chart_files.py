"""The Helm chart's static files: its CRDs are the generated ones, its YAML parses.

Rendering, linting and applying the chart need helm and a cluster:
tests/cluster/test_chart.py.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "shoal"


def test_chart_crds_are_the_generated_ones_byte_for_byte() -> None:
    generated = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    copied = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert copied == generated, "run `make crds`"
    for name in generated:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), (
            f"helm/shoal/crds/{name} differs from crds/{name}: run `make crds`"
        )


def test_chart_metadata_and_values_parse() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "shoal"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["watchNamespaces"] == []
    assert values["clusterWide"] is False
    assert values["metrics"]["serviceMonitor"]["enabled"] is False
    assert ":latest" not in values["worker"]["image"]
    # Least privilege and no store by default; the chart takes no credential values at
    # all, only the names of Secrets holding them.
    assert values["rbac"] == {"readSecrets": False, "secretNames": []}
    # Workflows run as `default` (and the chart's worker account) unless widened.
    assert values["workflowServiceAccounts"] == {"allowed": [], "selector": ""}
    assert values["artifacts"]["url"] == ""
    assert values["artifacts"]["existingSecret"] == ""
    assert values["archive"]["existingSecret"] == ""
    for section in ("artifacts", "archive"):
        for key in values[section]:
            assert not any(word in key.lower() for word in ("password", "accesskey", "dsn")), key
    # The admission webhook is on, and refuses (rather than admits unchecked) while the
    # operator cannot answer; the API server allows at most 30 s.
    webhook = values["webhook"]
    assert webhook["enabled"] is True
    assert webhook["failurePolicy"] == "Fail"
    assert 1 <= webhook["timeoutSeconds"] <= 30
