"""Manual CronWorkflow runs: names from the idempotency key, never a scheduled time."""

from __future__ import annotations

from datetime import UTC, datetime

from shoal.cli.cron_commands import KEY_ANNOTATION, build_manual_run, manual_run_name
from shoal.cron.runs import ANNOTATION_SCHEDULED

CRON = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "CronWorkflow",
    "metadata": {"name": "nightly", "namespace": "team", "uid": "u-1"},
    "spec": {
        "schedule": "0 0 * * *",
        "parameters": {"region": "eu"},
        "workflowSpec": {
            "parameters": {"region": "us", "greeting": "hi"},
            "nodes": [{"name": "a", "command": ["true"]}],
        },
    },
}
NOW = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)


def test_the_same_key_gives_the_same_name_and_keys_do_not_collide() -> None:
    assert manual_run_name("nightly", "k1") == manual_run_name("nightly", "k1")
    assert manual_run_name("nightly", "k1") != manual_run_name("nightly", "k2")
    assert manual_run_name("nightly", None) is None
    assert len(manual_run_name("x" * 253, "k") or "") <= 253


def test_a_keyed_run_is_owned_labelled_and_not_scheduled() -> None:
    run = build_manual_run(CRON, {"greeting": "hello"}, "deploy-42", NOW)
    meta = run["metadata"]
    assert meta["name"] == manual_run_name("nightly", "deploy-42")
    assert ANNOTATION_SCHEDULED not in meta["annotations"]
    assert "deploy-42" not in str(meta)  # only the key's hash is stored
    assert len(meta["annotations"][KEY_ANNOTATION]) == 64
    assert meta["ownerReferences"][0]["uid"] == "u-1"
    params = run["spec"]["parameters"]
    assert params == {"region": "eu", "greeting": "hello", "scheduledTime": params["scheduledTime"]}
    assert params["scheduledTime"].startswith("2026-11-22T23:00:00")


def test_without_a_key_the_server_names_each_run() -> None:
    meta = build_manual_run(CRON, {}, None, NOW)["metadata"]
    assert "name" not in meta
    assert meta["generateName"] == "nightly-manual-"
