"""The local run's logs: one file per node, whatever the item count, every attempt delimited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.local.conftest import shoal_run

Manifest = Callable[..., Path]


def test_a_fan_out_keeps_one_log_with_every_attempt_delimited_and_no_file_per_item(
    manifest: Manifest, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    path = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: logged}
        spec:
          nodes:
            - name: each
              forEach: [0, 1, 2]
              parallelism: 2
              retries: {limit: 1, backoffSeconds: 0}
              command:
                - sh
                - -c
                - |
                  echo "out $SHOAL_ITEM_INDEX"
                  if [ "$SHOAL_ITEM_INDEX$SHOAL_ATTEMPT" = 11 ]; then echo "boom" >&2; exit 3; fi
            - name: echo
              dependsOn: [each]
              job: greet
              args: {name: logs}
        """
    )
    result = shoal_run(path, "--workdir", str(workdir))
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in workdir.iterdir() if p.is_file()) == ["each.log", "echo.log"]
    leftovers = [p for p in workdir.rglob("*") if p.is_file() and p.suffix != ".log"]
    assert leftovers == []  # no termination message or args file left per attempt
    lines = (workdir / "each.log").read_text().splitlines()
    for index, attempt in ((0, 1), (1, 1), (1, 2), (2, 1)):
        name = f"item {index} attempt {attempt}"
        started = [n for n, line in enumerate(lines) if line.startswith(f"--- {name} started")]
        code = 3 if (index, attempt) == (1, 1) else 0
        ended = [n for n, line in enumerate(lines) if line == f"--- {name} exited {code} ---"]
        assert len(started) == len(ended) == 1, (name, lines)
        assert started[0] < ended[0]
        assert f"[item {index} #{attempt}] out {index}" in lines[started[0] : ended[0]]
    assert "[item 1 #1] boom" in lines
    echo = (workdir / "echo.log").read_text().splitlines()
    assert echo[0].startswith("--- attempt 1 started")
    assert echo[-1] == "--- attempt 1 exited 0 ---"
