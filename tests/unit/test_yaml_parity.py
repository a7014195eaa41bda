"""`shoal` reads YAML as `kubectl apply` does, and says where that differs from YAML 1.2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shoal.core.validation import InvalidWorkflow
from shoal.manifests import compile_manifest, load_file
from shoal.yamlread import go_scalar, load_documents


@pytest.mark.parametrize(
    ("text", "kubectl"),
    [
        # YAML 1.1 booleans, as go-yaml v2 (kubectl) reads them.
        ("y", True),
        ("Y", True),
        ("yes", True),
        ("on", True),
        ("ON", True),
        ("n", False),
        ("No", False),
        ("off", False),
        ("true", True),
        ("False", False),
        # Numbers: octal with a leading zero or 0o, hex, binary, underscores.
        ("0755", 493),
        ("0o17", 15),
        ("0x1F", 31),
        ("0b101", 5),
        ("-0b11", -3),
        ("1_000", 1000),
        ("08", 8),  # not octal: Go reads it as the float 8, stored as 8
        ("1e3", 1000),
        ("1.5", 1.5),
        (".5", 0.5),
        # Strings: timestamps, sexagesimal, words, NaN and infinity (JSON has neither).
        ("2024-01-01", "2024-01-01"),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
        ("1:30", "1:30"),
        ("nope", "nope"),
        (".inf", ".inf"),
        # Null.
        ("~", None),
        ("null", None),
    ],
)
def test_plain_scalars_read_as_kubectl_reads_them(text: str, kubectl: Any) -> None:
    value = go_scalar(text)
    assert value == kubectl
    assert type(value) is type(kubectl)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(text, encoding="utf-8")
    return path


WORKFLOW = """\
apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata:
  name: parity
spec:
  image: worker:1
  nodes:
    - name: a
      job: j
      args:
        n: 1
        mode: on
        perms: 0755
        label: "on"
"""


def test_what_shoal_runs_is_what_kubectl_stores(tmp_path: Path) -> None:
    (manifest,) = load_file(write(tmp_path, WORKFLOW))
    wf = compile_manifest(manifest)
    assert wf.nodes["a"].spec.args == {"false": 1, "mode": True, "perms": 493, "label": "on"}


def test_every_surprising_scalar_is_named_with_its_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, WORKFLOW)
    (manifest,) = load_file(path)
    assert manifest.warnings == [
        f"{path}:11:9: warning: key n is read by kubectl as the boolean false; "
        "quote it ('n') if you mean the text",
        f"{path}:12:15: warning: value on is read by kubectl as the boolean true; "
        "quote it ('on') if you mean the text",
        f"{path}:13:16: warning: value 0755 is read by kubectl as the number 493; "
        "quote it ('0755') if you mean the text",
    ]


def test_quoted_and_unambiguous_scalars_raise_no_warning(tmp_path: Path) -> None:
    text = WORKFLOW.split("      args:")[0] + '      args: {n: "x"}\n'
    text = text.replace("args: {n:", 'args: {"n":')
    (manifest,) = load_file(write(tmp_path, text))
    assert manifest.warnings == []


def test_a_schema_error_caused_by_a_boolean_key_says_so(tmp_path: Path) -> None:
    text = WORKFLOW.replace("    - name: a\n", "    - name: n\n")
    with pytest.raises(InvalidWorkflow) as info:
        load_file(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'wf.yaml'}:8:7: node '#1': name: ")
    assert "n on this line is read by kubectl as the boolean false; quote it" in message


def test_a_yaml_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "kind: Workflow\nspec: [a,\n")
    with pytest.raises(InvalidWorkflow) as info:
        load_file(path)
    assert str(info.value).startswith(f"{path}:3:1: not valid YAML: ")


def test_an_unknown_field_suggests_the_field_of_that_place(tmp_path: Path) -> None:
    text = WORKFLOW.replace("      job: j\n", "      job: j\n      retries: {limt: 2}\n")
    with pytest.raises(InvalidWorkflow) as info:
        load_file(write(tmp_path, text))
    assert str(info.value) == (
        f"{tmp_path / 'wf.yaml'}:10:17: node 'a': retries.limt: "
        "unknown field (did you mean 'limit'?)"
    )


def test_a_bad_workflow_name_is_explained_in_words(tmp_path: Path) -> None:
    with pytest.raises(InvalidWorkflow) as info:
        load_file(write(tmp_path, WORKFLOW.replace("name: parity", "name: Parity_1")))
    assert str(info.value) == (
        f"{tmp_path / 'wf.yaml'}:4:3: metadata.name: must be lowercase letters, digits, "
        "'-' or '.', starting and ending with a letter or digit, each '.'-separated part "
        "too (for example 'nightly-etl')"
    )


def test_positions_follow_anchors_and_flow_collections() -> None:
    (doc,) = load_documents("a: &x {b: [1, {c: 2}]}\nd: *x\n", "f.yaml")
    assert doc.raw == {"a": {"b": [1, {"c": 2}]}, "d": {"b": [1, {"c": 2}]}}
    assert doc.positions.locate(doc.raw, ["a", "b", "1", "c"]) == (1, 16)
    assert doc.positions.locate(doc.raw, ["d"]) == (2, 1)
    assert doc.positions.locate(doc.raw, ["a", "missing"]) == (1, 1)


def test_validate_prints_each_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shoal.cli.main import main

    path = write(tmp_path, WORKFLOW)
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"{path}:11:9: warning: key n is read by kubectl as the boolean false" in err


def test_submit_sends_what_kubectl_would_send(tmp_path: Path) -> None:
    import argparse

    from shoal.cli import submit_command

    path = write(tmp_path, WORKFLOW)
    args = argparse.Namespace(file=str(path), name=None, param=[])
    body = submit_command._checked_body(args)
    assert body["spec"]["nodes"][0]["args"] == {
        "false": 1,
        "mode": True,
        "perms": 493,
        "label": "on",
    }


TRICKY = """\
base: &base {retries: 2, on: yes, mode: 0755}
nodes:
  - <<: *base
    name: a
    when: 2024-01-01
    items: [1, 1_000, .5, "y", n, ~, '', 08, 1e3]
  - {name: b, 'quoted': 'x', ? complex : v}
---
---
second: |
  block text
  kept
"""


def _reading(docs: list[Any]) -> list[tuple[Any, list[Any], Any]]:
    def walk(raw: Any, doc: Any, path: list[Any]) -> list[Any]:
        marks = [
            (tuple(path), doc.positions.of(raw, k))
            for k in (raw if isinstance(raw, dict) else range(len(raw)))
        ]
        for k, v in raw.items() if isinstance(raw, dict) else enumerate(raw):
            if isinstance(v, dict | list):
                marks += walk(v, doc, [*path, k])
        return marks

    return [(d.raw, walk(d.raw, d, []), list(d.surprises)) for d in docs]


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).parents[2].joinpath("examples").rglob("*.yaml")), ids=str
)
def test_libyaml_and_pyyaml_read_every_example_alike(path: Path) -> None:
    from shoal import yamlread

    text = path.read_text(encoding="utf-8")
    fast = yamlread._load(yamlread._FastLoader, text, str(path))
    plain = yamlread._load(yamlread._KubectlLoader, text, str(path))
    assert _reading(fast) == _reading(plain)


def test_libyaml_and_pyyaml_read_anchors_blocks_and_surprises_alike() -> None:
    from shoal import yamlread

    assert yamlread._C_LOADER is not None, "PyYAML without libyaml: the fast reader is untested"
    fast = yamlread._load(yamlread._FastLoader, TRICKY, "t.yaml")
    plain = yamlread._load(yamlread._KubectlLoader, TRICKY, "t.yaml")
    assert _reading(fast) == _reading(plain)
    assert len(fast) == 2
    assert fast[1].raw == {"second": "block text\nkept\n"}
    assert {s.text for s in fast[0].surprises} >= {"on", "yes", "0755", "n", "1_000"}


def test_a_yaml_error_names_the_file_and_place_as_pyyaml_does(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [2, 3\nc: 4\n", encoding="utf-8")
    with pytest.raises(InvalidWorkflow) as info:
        load_file(path)
    # PyYAML's wording (libyaml's own would be "did not find expected ',' or ']'")
    assert str(info.value) == (
        f"{path}:3:2: not valid YAML: while parsing a flow sequence, "
        "expected ',' or ']', but got ':'"
    )


def test_a_merge_key_merges_as_kubectl_does() -> None:
    """go-yaml v2 (kubectl) honours `<<: *anchor`; explicit keys win over merged ones, and
    a quoted '<<' is an ordinary key."""
    text = (
        "base: &b {image: alpine, command: [echo, hi], retries: 1}\n"
        "node:\n  <<: *b\n  name: x\n  retries: 3\n"
        "quoted: {'<<': 1}\n"
    )
    (doc,) = load_documents(text, "m.yaml")
    assert doc.raw["node"] == {
        "image": "alpine",
        "command": ["echo", "hi"],
        "retries": 3,
        "name": "x",
    }
    assert doc.raw["quoted"] == {"<<": 1}
    assert doc.positions.locate(doc.raw, ["node", "image"]) == (1, 11)  # where it is written


def test_a_node_built_from_an_anchor_validates(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: merge}\nspec:\n"
        "  nodes:\n    - &base\n      name: a\n      command: ['true']\n      timeoutSeconds: 30\n"
        "    - <<: *base\n      name: b\n      dependsOn: [a]\n",
        encoding="utf-8",
    )
    (manifest,) = load_file(path)
    wf = compile_manifest(manifest)
    assert wf.nodes["b"].spec.timeout_seconds == 30
    assert wf.nodes["b"].spec.command == ["true"]
