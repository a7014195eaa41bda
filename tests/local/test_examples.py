"""Every example in examples/ runs under `shoal run` to its documented phase and outputs."""

from __future__ import annotations

import hashlib

import pytest

from tests.local.conftest import EXAMPLES, RunResult, shoal_run

pytestmark = pytest.mark.local


def check_hello(r: RunResult) -> None:
    assert r.node("hello")["outputs"] == {"message": "hello, world!"}
    assert r.node("goodbye")["outputs"] == {"message": "after 'hello, world!', goodbye, world!"}


def check_diamond(r: RunResult) -> None:
    assert r.node("left")["outputs"]["sum"] == 4
    assert r.node("right")["outputs"]["sum"] == 5
    assert r.node("join")["outputs"]["product"] == 20


def _records(market: str) -> int:
    return sum(
        int(hashlib.sha256(f"{market}{step}".encode()).hexdigest()[:2], 16) % 10
        for step in range(1, 5)
    )


def check_catalog(r: RunResult) -> None:
    markets = r.node("markets")["outputs"]["market_ids"]
    assert markets == ["eu-west-1", "eu-west-2", "eu-west-3", "eu-west-4"]
    integration = r.node("integration")
    assert integration["items"] == {"total": 4, "succeeded": 4, "failed": 0}
    assert integration["outputs"]["count"] == [_records(m) for m in markets]
    assert r.node("publish")["outputs"] == {"published": sum(_records(m) for m in markets)}
    assert r.node("notify")["phase"] == "Succeeded"
    # The demo shows a retry (eu-west-3's first attempt fails) and a skipped condition.
    assert integration["attempts"] == len(markets) + 1
    assert r.node("alert-empty")["phase"] == "Skipped"


def check_retry(r: RunResult) -> None:
    assert r.node("flaky")["attempts"] == 2
    assert r.node("after")["outputs"] == {"flaky_attempt": 2}


def check_shell(r: RunResult) -> None:
    assert r.node("count")["outputs"] == {"words": ["alpha", "beta", "gamma"], "total": 3}
    assert r.node("shout")["outputs"] == {"upper": ["ALPHA", "BETA", "GAMMA"]}


def check_failing(r: RunResult) -> None:
    boom = r.node("boom")
    assert boom["phase"] == "Failed"
    assert "the database is on fire" in boom["message"]
    assert boom["exitCode"] == 1
    assert r.node("downstream")["phase"] == "Omitted"
    assert r.node("cleanup")["phase"] == "Succeeded"
    assert "node 'boom' failed" in r.status["message"]


def check_exit_handlers(r: RunResult) -> None:
    assert r.node("intentional-fail")["phase"] == "Failed"
    assert r.node("notify")["outputs"] == {
        "status": "Failed",
        "failed": ["intentional-fail"],
        "verdict": "cry",
    }
    assert "node 'intentional-fail' failed" in r.status["message"]


def check_retry_backoff(r: RunResult) -> None:
    assert r.node("flaky")["attempts"] == 3
    assert r.node("flaky")["outputs"] == {"attempt": 3}


def _dataset_sha256(megabytes: int) -> str:
    block = hashlib.sha256(b"shoal").digest() * (1 << 15)
    digest = hashlib.sha256()
    for _ in range(megabytes):
        digest.update(block)
    return digest.hexdigest()


def check_artifacts(r: RunResult) -> None:
    extract = r.node("extract")["outputs"]
    # Only references travel: the file, and the id list that was over offloadBytes.
    assert extract["dataset"]["$artifact"]["size"] == 8 * 1024 * 1024
    assert extract["ids"]["$artifact"]["format"] == "jsonl"
    assert extract["ids"]["$artifact"]["count"] == 200
    check = r.node("check")
    assert check["items"] == {"total": 200, "succeeded": 200, "failed": 0}
    assert check["outputs"]["score"] == [i % 7 for i in range(200)]  # small: inline
    assert check["outputs"]["read"]["$artifact"]["count"] == 200  # stored as one artifact
    assert r.node("report")["outputs"] == {
        "total": sum(i % 7 for i in range(200)),
        "rows": 200,
        "datasetDigests": [_dataset_sha256(8)],  # items 0, 50, 100, 150 read the whole file
    }


def check_sequence(r: RunResult) -> None:
    shards = r.node("shards")
    assert shards["items"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert shards["outputs"]["message"] == [f"hello, shard-{i:02d}!" for i in range(3)]
    assert r.node("countdown")["outputs"]["left"] == [3, 2, 1]


def check_suspend(r: RunResult) -> None:
    approve = r.node("approve")
    assert approve["phase"] == "Succeeded"
    assert approve["outputs"]["approved"] is True
    assert approve["outputs"]["timedOut"] is True  # nobody resumed: the default decided
    assert r.node("release")["outputs"] == {"released": "app-1.2.3", "approvedBy": "timeout"}
    assert r.node("rollback")["phase"] == "Skipped"


def check_child_workflow(r: RunResult) -> None:
    """Children run on a cluster only (tests/cluster/test_children_cluster.py runs this
    example there): locally the child node fails saying so, and nothing after it runs."""
    child = r.node("report-per-region")
    assert child["phase"] == "Failed"
    assert "child workflows run on a cluster only" in child["message"]
    assert r.node("publish")["phase"] == "Omitted"


def check_child_workflow_in_a_cluster(r: RunResult) -> None:
    """On a cluster the child runs: its node's outputs are the child's, by node name."""
    assert r.node("report-per-region")["outputs"] == {"count": {"region": "eu-west", "rows": 42}}
    assert r.node("publish")["outputs"] == {"published": 42, "region": "eu-west"}


def check_dag_diamond(r: RunResult) -> None:
    assert r.node("d")["outputs"] == {"result": "D after B after A and C after A"}


def check_loops_param_result(r: RunResult) -> None:
    assert r.node("gen-number-list")["outputs"] == {"result": "[3, 4, 5]"}
    sleep = r.node("sleep-n")
    assert sleep["items"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert sleep["outputs"]["result"] == [f"sleeping for {n} ms\n{n}" for n in (3, 4, 5)]


def check_output_parameter(r: RunResult) -> None:
    assert r.node("generate-parameter")["outputs"] == {"hello_param": "hello world"}
    assert r.node("consume-parameter")["outputs"] == {"result": "hello world"}


def check_coinflip(r: RunResult) -> None:
    side = r.node("flip-coin")["outputs"]["result"]
    assert side in ("heads", "tails")
    other = "tails" if side == "heads" else "heads"
    assert r.node(side)["outputs"] == {"result": f"it was {side}"}
    assert r.node(other)["phase"] == "Skipped"


def check_templates(r: RunResult) -> None:
    # The template's whole DAG under the reference's name, and one node of it, each with
    # the parameters the reference gave (the template's defaults for the rest).
    assert r.node("team-compose")["outputs"] == {"result": "hello, shoal!"}
    assert r.node("team-shout")["outputs"] == {"result": "HELLO, SHOAL!"}
    assert r.node("quiet")["outputs"] == {"result": "hello, ada."}
    assert r.node("summary")["outputs"] == {"result": "HELLO, SHOAL! / hello, ada."}


def check_mutex(r: RunResult) -> None:
    assert all(r.node(n)["outputs"] == {"table": n[8:]} for n in r.status["nodes"])


def check_semaphore(r: RunResult) -> None:
    assert r.node("crawl-d")["outputs"] == {"site": "d"}


def check_memoize(r: RunResult) -> None:
    # The first run in a fresh state directory computes and caches it.
    assert r.node("generate")["memoized"] == {"key": "echo-hello world", "hit": False}
    assert r.node("print")["outputs"] == {"said": "hello world"}


EXPECTED = {
    "artifacts.yaml": ("Succeeded", check_artifacts),
    "hello.yaml": ("Succeeded", check_hello),
    "diamond.yaml": ("Succeeded", check_diamond),
    "catalog.yaml": ("Succeeded", check_catalog),
    "retry.yaml": ("Succeeded", check_retry),
    "shell.yaml": ("Succeeded", check_shell),
    "failing.yaml": ("Failed", check_failing),
    "exit-handlers.yaml": ("Failed", check_exit_handlers),
    "retry-backoff.yaml": ("Succeeded", check_retry_backoff),
    "sequence.yaml": ("Succeeded", check_sequence),
    "suspend.yaml": ("Succeeded", check_suspend),
    "child-workflow.yaml": ("Failed", check_child_workflow),
    "dag-diamond.yaml": ("Succeeded", check_dag_diamond),
    "loops-param-result.yaml": ("Succeeded", check_loops_param_result),
    "output-parameter.yaml": ("Succeeded", check_output_parameter),
    "coinflip.yaml": ("Succeeded", check_coinflip),
    "templates.yaml": ("Succeeded", check_templates),
    "synchronization-mutex.yaml": ("Succeeded", check_mutex),
    "synchronization-semaphore.yaml": ("Succeeded", check_semaphore),
    "memoize.yaml": ("Succeeded", check_memoize),
}


IN_A_CLUSTER = {
    **EXPECTED,
    "child-workflow.yaml": ("Succeeded", check_child_workflow_in_a_cluster),
}
"""What each example ends as on a cluster (tests/cluster: kubectl apply and the SDK twin)."""


def test_every_example_has_an_expectation() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_reaches_expected_phase_and_outputs(name: str) -> None:
    phase, check = EXPECTED[name]
    result = shoal_run(EXAMPLES / name)
    assert result.status, result.stderr
    assert result.status["phase"] == phase, result.stderr
    assert result.code == (0 if phase == "Succeeded" else 1)
    check(result)


def test_parameters_from_the_command_line() -> None:
    result = shoal_run(EXAMPLES / "hello.yaml", "-p", "name=Ada")
    assert result.node("hello")["outputs"] == {"message": "hello, Ada!"}
    result = shoal_run(EXAMPLES / "catalog.yaml", "-p", "markets=2", "-p", "region=us")
    assert result.node("markets")["outputs"]["market_ids"] == ["us-1", "us-2"]
    assert result.node("integration")["items"]["total"] == 2
    for seed, side in (("1", "heads"), ("5", "tails")):  # the flip is repeatable with a seed
        result = shoal_run(EXAMPLES / "coinflip.yaml", "-p", f"seed={seed}")
        assert result.node("flip-coin")["outputs"] == {"result": side}
        assert result.node("heads" if side == "tails" else "tails")["phase"] == "Skipped"
    result = shoal_run(EXAMPLES / "sequence.yaml", "-p", "shards=5")
    assert result.node("shards")["outputs"]["message"][-1] == "hello, shard-04!"
