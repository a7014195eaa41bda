"""`shoal run` loads only what a run uses (issue 17: a 50-node chain's start-up).

Structural, not timed (bench/startup.py measures): the command runs in a fresh
interpreter and the probe lists what ended up in `sys.modules`. What is kept out, and
what it used to cost a 1-node run: `dataclasses` and its per-class code generation (the
planner's records are `shoal_worker.records.Record`s), `uuid` with `platform` (the run's
uid), `secrets`, `random`, `hmac` and `hashlib` (the attempt token, compared only once a
child speaks the protocol), `tempfile` (only without `--workdir`), `difflib` (a
mistake's suggestion), `inspect` (the job checker, only with `--import`), and asyncio with
`ssl` and `concurrent.futures` (the loop is local/reactor.py's; `--ui` runs on asyncio).
"""

from __future__ import annotations

import string
import uuid
from pathlib import Path

from shoal.local.run_ids import random_uid, temporary_workdir
from shoal_worker.protocol import OutputMessage, ProtocolViolation, encode, new_token, parse_line
from tests.unit.test_cli_startup import run_probe

KEPT_OUT = (
    "dataclasses",
    "uuid",
    "platform",
    "secrets",
    "random",
    "hmac",
    "hashlib",
    "tempfile",
    "difflib",
    "inspect",
    "asyncio",
    "ssl",
    "concurrent.futures",
)


def chain(tmp_path: Path, length: int) -> Path:
    lines = ["apiVersion: shoal.dev/v1alpha1", "kind: Workflow", "metadata: {name: chain}"]
    lines += ["spec:", "  nodes:", "    - {name: n0, command: ['true']}"]
    lines += [
        f"    - {{name: n{i}, command: ['true'], dependsOn: [n{i - 1}]}}" for i in range(1, length)
    ]
    manifest = tmp_path / "chain.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_a_plain_run_of_a_chain_loads_none_of_the_modules_it_does_not_use(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    output, code, modules = run_probe(
        "run", "--plain", "-q", "--workdir", str(work), str(chain(tmp_path, 3))
    )
    assert code == 0, output
    assert "workflow chain Succeeded in " in output
    assert "shoal.core.decisions" in modules  # it did plan and run
    assert sorted(modules & set(KEPT_OUT)) == [], output


def test_a_run_that_speaks_the_protocol_still_checks_the_token(tmp_path: Path) -> None:
    """The token comparison loads `hmac` on first use: a protocol line is still accepted
    with the right token and is plain output with a wrong one."""
    token = new_token()
    assert len(token) == 32
    assert set(token) <= set(string.hexdigits.lower())
    assert new_token() != token
    line = encode(OutputMessage("k", [1, 2]), token)
    assert parse_line(line, token) == OutputMessage("k", [1, 2])
    assert isinstance(parse_line(line, new_token()), ProtocolViolation)  # kept as text


def test_the_run_uid_is_a_version_4_uuid_as_uuid4_writes_it() -> None:
    uids = {random_uid() for _ in range(200)}
    assert len(uids) == 200
    for uid in uids:
        parsed = uuid.UUID(uid)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == uid


def test_the_default_work_directory_is_new_and_private() -> None:
    first, second = temporary_workdir(), temporary_workdir()
    try:
        assert first != second
        assert first.name.startswith("shoal-run-")
        assert first.stat().st_mode & 0o777 == 0o700
    finally:
        first.rmdir()
        second.rmdir()
