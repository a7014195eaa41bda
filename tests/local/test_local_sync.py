"""`shoal run` with `synchronization` and `memoize`: nodes sharing a mutex never overlap,
a semaphore's limit is never exceeded, and a memoized node runs once, is reused by a
later run (of another workflow) with the same key, and runs again once the entry is
older than maxAge."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.local.conftest import shoal_run

pytestmark = pytest.mark.local

Manifest = Callable[..., Path]

WORK = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"
"""A little CPU work, so that nodes running at once would overlap (no sleep)."""


def guarded_nodes(count: int, lock: str, check: str) -> str:
    """`count` independent nodes that each enter a shared directory, fail with 9 if
    `check` finds too many there, work, and leave."""
    nodes = []
    for i in range(count):
        script = f"touch in/n{i}; {check} && exit 9; {WORK}; rm in/n{i}"
        nodes.append(
            f"""
            - name: n{i}
              command: [sh, -c, '{script}']
              synchronization: {lock}"""
        )
    return "".join(nodes)


@pytest.mark.parametrize(
    ("lock", "limit"),
    [("{mutexes: [{name: m}]}", 1), ("{semaphores: [{name: s, limit: 3}]}", 3)],
)
def test_holders_of_a_lock_never_exceed_its_limit(
    manifest: Manifest, tmp_path: Path, lock: str, limit: int
) -> None:
    inside = tmp_path / "in"
    inside.mkdir()
    check = f'[ "$(ls {inside} | wc -l)" -gt {limit} ]'
    body = guarded_nodes(8, lock, check).replace("in/", f"{inside}/")
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: locked}}
        spec:
          nodes:{body}
        """
    )
    result = shoal_run(path)
    assert result.status["phase"] == "Succeeded", result.stderr
    assert list(inside.iterdir()) == []


def test_without_a_lock_the_same_nodes_do_overlap(manifest: Manifest, tmp_path: Path) -> None:
    """The check above can fail: the same nodes without the mutex do run at once."""
    inside = tmp_path / "in"
    inside.mkdir()
    body = guarded_nodes(8, "null", f'[ "$(ls {inside} | wc -l)" -gt 1 ]')
    body = body.replace("in/", f"{inside}/").replace("\n              synchronization: null", "")
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: unlocked}}
        spec:
          nodes:{body}
        """
    )
    result = shoal_run(path)
    assert result.status["phase"] == "Failed"
    assert any(n.get("exitCode") == 9 for n in result.status["nodes"].values())


def memo_manifest(manifest: Manifest, name: str, counter: Path) -> Path:
    return manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: {name}}}
        spec:
          parameters: {{day: "2026-12-07"}}
          nodes:
            - name: price
              command: [sh, -c, 'echo ran >> {counter}; echo 42']
              captureStdout: true
              memoize: {{key: "price-${{{{ params.day }}}}", maxAge: 1h}}
        """,
        name=f"{name}.yaml",
    )


def test_a_memoized_node_runs_once_across_workflows_and_again_after_max_age(
    manifest: Manifest, tmp_path: Path, own_state_dir: Path
) -> None:
    counter = tmp_path / "runs.txt"
    first = shoal_run(memo_manifest(manifest, "first", counter))
    assert first.node("price")["outputs"] == {"result": "42"}
    assert first.node("price")["memoized"] == {"key": "price-2026-12-07", "hit": False}
    second = shoal_run(memo_manifest(manifest, "second", counter))
    assert second.status["phase"] == "Succeeded", second.stderr
    assert second.node("price")["outputs"] == {"result": "42"}
    assert second.node("price")["memoized"]["hit"] is True
    assert second.node("price")["attempts"] == 0
    assert counter.read_text().splitlines() == ["ran"]
    # Age the entry past maxAge (1h) instead of waiting an hour.
    cache = own_state_dir / "memo.json"
    entries = json.loads(cache.read_text())
    entries["price-2026-12-07"]["createdAt"] -= 3601
    cache.write_text(json.dumps(entries))
    third = shoal_run(memo_manifest(manifest, "third", counter))
    assert third.node("price")["memoized"]["hit"] is False
    assert counter.read_text().splitlines() == ["ran", "ran"]


def test_a_run_with_another_key_misses(manifest: Manifest, tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    shoal_run(memo_manifest(manifest, "first", counter))
    other = shoal_run(memo_manifest(manifest, "other", counter), "-p", "day=2026-12-08")
    assert other.node("price")["memoized"] == {"key": "price-2026-12-08", "hit": False}
    assert counter.read_text().splitlines() == ["ran", "ran"]


def test_the_memoize_doc_command_runs_verbatim_and_hits_the_second_time(
    own_state_dir: Path,
) -> None:
    from tests.local.test_doc_commands_run import shell, shown

    (command,) = shown("flow-control.md", "shoal run ")
    first, second = shell(command), shell(command)  # SHOAL_STATE_DIR: this test's own
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "memoized: reused the outputs" not in first.stdout + first.stderr
    assert "memoized: reused the outputs cached under key 'echo-hello world'" in (
        second.stdout + second.stderr
    )
    assert (own_state_dir / "memo.json").exists()
