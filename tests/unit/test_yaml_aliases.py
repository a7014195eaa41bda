"""Hostile YAML aliases (yaml_aliases.py): an anchor whose value contains itself, and a
small file whose aliases stand for billions of values, are refused with the file and
place when the file is read, by either reader, before anything walks the expansion;
ordinary anchors still read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shoal import yamlread
from shoal.api.limits import MAX_ALIAS_VALUES
from shoal.core.validation import InvalidWorkflow
from shoal.manifests import load_file
from shoal.yaml_aliases import check_aliases

HEAD = "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: a}\nspec:\n"


def laughs(levels: int) -> str:
    """Each level lists the one before twice: 2**levels values from a few hundred bytes."""
    lines = ["  nodes:", "    - name: a", "      job: j", "      args:", "        l0: &l0 [v, v]"]
    lines += [f"        l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, levels)]
    return HEAD + "\n".join(lines) + "\n"


LOADERS = [yamlread._FastLoader, yamlread._KubectlLoader]


@pytest.mark.parametrize("kind", LOADERS, ids=["libyaml", "pyyaml"])
def test_an_anchor_that_contains_itself_is_refused_at_the_anchor(kind: type) -> None:
    text = HEAD + "  nodes:\n    - name: a\n      job: j\n      args: &a {x: *a}\n"
    with pytest.raises(yaml.YAMLError, match="an alias refers to a node that contains it") as info:
        yamlread._load(kind, text, "r.yaml")
    mark = info.value.problem_mark  # type: ignore[attr-defined]
    assert (mark.line + 1, mark.column + 1) == (8, 13)  # the anchored node it refers to


@pytest.mark.parametrize("kind", LOADERS, ids=["libyaml", "pyyaml"])
def test_a_billion_laughs_file_is_refused_before_it_is_expanded(kind: type) -> None:
    with pytest.raises(yaml.YAMLError, match=r"aliases add \d+ values to this document"):
        yamlread._load(kind, laughs(60), "b.yaml")  # 2**60 values if expanded


def test_the_cli_names_the_file_and_place(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs(40), encoding="utf-8")
    with pytest.raises(InvalidWorkflow) as info:
        load_file(path)
    assert str(info.value).startswith(f"{path}:1:1: not valid YAML: aliases add ")
    assert f"more than the {MAX_ALIAS_VALUES} allowed" in str(info.value)


def test_ordinary_anchors_and_merges_still_read() -> None:
    text = HEAD + (
        "  defaults: &d {timeoutSeconds: 30}\n"
        "  nodes:\n"
        "    - &n {name: a, job: j, args: &args {x: [1, 2, 3]}}\n"
        "    - {<<: *n, name: b, dependsOn: [a]}\n"
        "    - {name: c, job: j, args: *args, dependsOn: [b]}\n"
    )
    (doc,) = yamlread.load_documents(text, "ok.yaml")
    nodes = doc.raw["spec"]["nodes"]
    assert [n["name"] for n in nodes] == ["a", "b", "c"]
    assert nodes[2]["args"] == {"x": [1, 2, 3]}


def test_the_bound_counts_only_what_aliases_add() -> None:
    """A list of 4 written values, repeated by aliases: 4 + 1 (the list) per use."""
    node = yaml.compose("a: &l [1, 2, 3, 4]\nb: *l\nc: *l\n")
    assert node is not None
    check_aliases(node, limit=10)  # two repeats of 5 values add 10
    with pytest.raises(yaml.YAMLError, match="aliases add 10 values"):
        check_aliases(node, limit=9)
