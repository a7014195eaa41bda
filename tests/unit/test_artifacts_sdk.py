"""The worker SDK's artifact calls: ctx.save_artifact / open_artifact / load_artifact."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from shoal_worker import Context
from shoal_worker.artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    LocalArtifactStore,
)

POD_ENV = {
    "SHOAL_NAMESPACE": "team-a",
    "SHOAL_WORKFLOW": "nightly",
    "SHOAL_WORKFLOW_UID": "0b9c-uid",
    "SHOAL_NODE": "integration",
    "SHOAL_ITEM_INDEX": "7",
    "SHOAL_ATTEMPT": "2",
}


def context(tmp_path: Path, **extra: str) -> tuple[Context, io.StringIO]:
    out = io.StringIO()
    env = {**POD_ENV, "SHOAL_ARTIFACTS": f"file://{tmp_path / 'store'}", **extra}
    return Context({}, stream=out, env=env), out


def logs(out: io.StringIO) -> list[dict[str, Any]]:
    messages = [json.loads(line.split(" ", 1)[1]) for line in out.getvalue().splitlines()]
    return [m for m in messages if m["type"] == "log"]


def test_saved_bytes_land_under_the_runs_key_and_load_back(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    ref = ctx.save_artifact("report.csv", b"a,b\n1,2\n")
    assert ref.key == "team-a/nightly/0b9c-uid/integration/7/2/report.csv"
    assert (tmp_path / "store" / ref.key).read_bytes() == b"a,b\n1,2\n"
    assert ctx.load_artifact(ref) == b"a,b\n1,2\n"


def test_a_downstream_job_loads_what_an_upstream_output_carries(tmp_path: Path) -> None:
    upstream, _ = context(tmp_path)
    upstream.set_output("report", upstream.save_artifact("report.csv", b"data").as_output())
    carried = json.loads(json.dumps(upstream.outputs["report"]))  # as the next pod gets it
    downstream, _ = context(tmp_path, SHOAL_NODE="publish", SHOAL_ITEM_INDEX="")
    assert downstream.load_artifact(carried) == b"data"
    assert b"".join(downstream.open_artifact(carried)) == b"data"
    target = downstream.load_artifact(carried, tmp_path / "in" / "report.csv")
    assert target == tmp_path / "in" / "report.csv"
    assert target.read_bytes() == b"data"


def test_paths_and_file_objects_are_saved_by_streaming(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    source = tmp_path / "big.bin"
    source.write_bytes(b"z" * 100_000)
    by_path = ctx.save_artifact("by-path", source)
    by_str = ctx.save_artifact("by-str", str(source))
    with source.open("rb") as stream:
        by_stream = ctx.save_artifact("by-stream", stream)
    assert {r.sha256 for r in (by_path, by_str, by_stream)} == {by_path.sha256}
    assert {r.size for r in (by_path, by_str, by_stream)} == {100_000}
    assert len({r.key for r in (by_path, by_str, by_stream)}) == 3


def test_every_save_and_load_is_logged_with_size_and_duration(tmp_path: Path) -> None:
    ctx, out = context(tmp_path)
    ref = ctx.save_artifact("a.bin", b"12345")
    ctx.load_artifact(ref)
    list(ctx.open_artifact(ref))
    saved, loaded, read = logs(out)
    assert saved["message"] == "saved artifact"
    assert saved["fields"]["name"] == "a.bin"
    for message in (saved, loaded, read):
        assert message["fields"]["key"] == ref.key
        assert message["fields"]["size"] == 5
        assert message["fields"]["seconds"] >= 0
        assert message["fields"]["store"] == f"file://{tmp_path / 'store'}"
    assert (loaded["message"], read["message"]) == ("loaded artifact", "read artifact")


def test_the_store_is_opened_once_and_only_when_used(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path, SHOAL_ARTIFACTS="gs://not-a-store")
    ctx.log("a job that never touches artifacts is not bothered by their settings")
    with pytest.raises(ValueError, match="SHOAL_ARTIFACTS"):
        ctx.save_artifact("x", b"1")
    ok, _ = context(tmp_path)
    assert ok.artifacts is ok.artifacts


def test_without_a_store_the_error_says_what_to_set(tmp_path: Path) -> None:
    ctx = Context({}, stream=io.StringIO(), env=POD_ENV)
    with pytest.raises(ArtifactError, match=r"no artifact store is configured.*SHOAL_ARTIFACTS"):
        ctx.save_artifact("x", b"1")


def test_a_store_can_be_handed_in_for_tests_of_jobs(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    ctx = Context({}, stream=io.StringIO(), env={}, artifact_store=store)
    ref = ctx.save_artifact("out.txt", b"hi")
    assert ref.key == "local/local/local/local/-/1/out.txt"
    assert store.read_bytes(ref) == b"hi"


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "with space", 3])
def test_bad_names_are_refused(tmp_path: Path, name: Any) -> None:
    ctx, _ = context(tmp_path)
    with pytest.raises(ValueError, match="artifact name"):
        ctx.save_artifact(name, b"1")


def test_unsupported_sources_and_references_say_what_was_expected(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    with pytest.raises(TypeError, match="bytes, a path or a binary file object, got int"):
        ctx.save_artifact("x", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"expected an ArtifactRef .* got \{'key': 'k'\}"):
        ctx.load_artifact({"key": "k"})


def test_missing_and_corrupted_artifacts_surface_as_such(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    ref = ctx.save_artifact("a", b"hello")
    (tmp_path / "store" / ref.key).write_bytes(b"HELLO")
    with pytest.raises(ArtifactCorrupted):
        ctx.load_artifact(ref)
    with pytest.raises(ArtifactCorrupted):
        list(ctx.open_artifact(ref.as_output()))
    with pytest.raises(ArtifactNotFound):
        ctx.load_artifact(ArtifactRef("team-a/gone", 1, ref.sha256))
