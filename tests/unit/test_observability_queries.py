"""The chart's Grafana dashboard and PrometheusRule name only metrics the operator exports.

Every PromQL expression in helm/shoal/dashboards/*.json and files/prometheus-rules.yaml
is tokenized (a small PromQL lexer: no PyPI PromQL parser is both pure Python and kept
up, and telling metric names from functions, keywords, label names and durations needs
only the lexical rules), and each metric name must be a sample name of a metric in the
operator's own registry (kube/metrics.Metrics plus the cron metrics registered in it),
by the exposition's suffix rules: a counter is read as `_total`, a histogram as
`_bucket`, `_sum` or `_count`, a gauge as its name. A renamed metric fails here, not on
someone's dashboard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from shoal.cron.passes import CronMetrics
from shoal.kube.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "shoal"
RULES = CHART / "files" / "prometheus-rules.yaml"
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))

FUNCTIONS = frozenset(
    [
        "abs",
        "absent",
        "absent_over_time",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_quantile",
        "holt_winters",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log2",
        "log10",
        "max_over_time",
        "min_over_time",
        "predict_linear",
        "quantile_over_time",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "time",
        "timestamp",
        "vector",
    ]
)
AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ]
)
KEYWORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
    ]
)
GROUPING = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])

TOKEN = re.compile(
    r"""(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
      |(?P<variable>\$\{[^}]*\}|\$\w+)
      |(?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![A-Za-z0-9_:])
      |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
      |(?P<punct>==|!=|<=|>=|=~|!~|[-+*/%^<>=(){}\[\],:@])
      |(?P<space>\s+)""",
    re.VERBOSE,
)


def tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = TOKEN.match(expr, pos)
        assert match is not None, f"cannot tokenize {expr!r} at {pos}: {expr[pos : pos + 20]!r}"
        kind = match.lastgroup or ""
        if kind != "space":
            out.append((kind, match.group()))
        pos = match.end()
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers outside `{...}`, `[...]` and
    grouping label lists that are neither functions, aggregations nor keywords."""
    names: set[str] = set()
    toks = tokens(expr)
    braces = brackets = 0
    label_list = False
    for i, (kind, text) in enumerate(toks):
        following = toks[i + 1][1] if i + 1 < len(toks) else ""
        if text == "{":
            braces += 1
        elif text == "}":
            braces -= 1
        elif text == "[":
            brackets += 1
        elif text == "]":
            brackets -= 1
        elif text == ")" and label_list:
            label_list = False
        elif kind == "ident" and not (braces or brackets or label_list):
            if text in GROUPING:
                label_list = following == "("
                continue
            if following == "(":
                assert text in FUNCTIONS | AGGREGATIONS, f"unknown PromQL function {text!r}"
                continue
            if text in KEYWORDS | AGGREGATIONS:
                continue
            names.add(text)
        elif text == "(" and label_list and toks[i - 1][1] not in GROUPING:
            raise AssertionError(f"unexpected '(' in a label list of {expr!r}")
    assert (braces, brackets) == (0, 0), f"unbalanced {{}} or [] in {expr!r}"
    return names


def sample_names(registry: CollectorRegistry) -> set[str]:
    """Every series name the registry exposes, by metric type (not by the samples seen
    so far: a labelled counter has no sample before its first increment)."""
    names: set[str] = set()
    for family in registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("", "_sum", "_count"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


@pytest.fixture(scope="module")
def exported() -> set[str]:
    metrics = Metrics()
    CronMetrics(metrics.registry)  # the operator registers the cron metrics in it too
    return sample_names(metrics.registry)


def rule_exprs() -> Iterator[tuple[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            yield f"{RULES.name}: {rule.get('alert') or rule.get('record')}", rule["expr"]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets") or []:
                yield f"{path.name}: {panel['title']} {target['refId']}", target["expr"]


def test_the_suffix_rules_read_the_registry_as_prometheus_does(exported: set[str]) -> None:
    assert "shoal_workflows_finished_total" in exported  # counter, labelled, no sample yet
    assert "shoal_node_duration_seconds_bucket" in exported
    assert "shoal_node_duration_seconds" not in exported  # a histogram has no bare series
    assert "shoal_workflows_running" in exported
    assert "shoal_workflows_running_total" not in exported  # a gauge has no _total
    assert "shoal_cron_runs_fired_total" in exported


def test_the_lexer_finds_metrics_and_only_metrics() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, phase) (rate(a_bucket{phase=~"x|y", le!=""}'
        "[$__rate_interval] offset 5m))) / on (pod) group_left (node) b_count > bool 1e3"
    )
    assert metric_names(expr) == {"a_bucket", "b_count"}
    assert metric_names("min_over_time(shoal_pods_pending[15m]) > 0") == {"shoal_pods_pending"}
    with pytest.raises(AssertionError, match="unknown PromQL function"):
        metric_names("rates(x[5m])")
    with pytest.raises(AssertionError, match="unbalanced"):
        metric_names("rate(x[5m)")


def test_the_chart_ships_a_dashboard_and_the_four_kinds_of_alert() -> None:
    assert DASHBOARDS, "helm/shoal/dashboards/*.json"
    exprs = dict(rule_exprs())
    named = " ".join(exprs.values())
    for metric in (
        "shoal_workflows_past_deadline",
        "shoal_reconcile_errors_total",
        "shoal_archive_log_lines_dropped_total",
        "shoal_pods_pending",
    ):
        assert metric in named, f"no alert reads {metric}"
    for rule in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


@pytest.mark.parametrize(
    ("where", "expr"), [*rule_exprs(), *dashboard_exprs()], ids=lambda v: str(v)[:60]
)
def test_every_query_names_a_metric_the_operator_exports(
    where: str, expr: str, exported: set[str]
) -> None:
    names = metric_names(expr)
    assert names, f"{where}: {expr!r} reads no metric"
    unknown = names - exported
    assert not unknown, f"{where}: {sorted(unknown)} not exported by the operator"


def test_every_exported_metric_is_in_the_operator_docs_table(exported: set[str]) -> None:
    """What a dashboard may read is what docs/operator.md lists (`{a,b}` expanded)."""
    text = (REPO / "docs" / "operator.md").read_text()
    documented: set[str] = set()
    for shown in re.findall(r"^\| `(shoal_[a-z_{},]+)` \|", text, re.MULTILINE):
        name = re.sub(r"\{[a-z]+\}$", "", shown)  # a label: `..._total{phase}`
        head, brace, rest = name.partition("{")
        if brace:
            choices, _, tail = rest.partition("}")
            documented.update(head + choice + tail for choice in choices.split(","))
        else:
            documented.add(name)
    bare = {n for n in exported if not n.endswith(("_bucket", "_sum", "_count"))}
    bare |= {n[: -len("_bucket")] for n in exported if n.endswith("_bucket")}
    assert bare == documented
