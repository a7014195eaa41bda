"""How an attempt ended (shoal.kube.attempts.outcome_event): its pod plus what its log said.

A collector is fed the worker's stdout protocol lines (as the log follower would), the
pod is one of the API-shaped fixtures, and the result is the planner's `TaskFinished`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from shoal.core.state import TaskFinished
from shoal.kube.attempts import WORKER_USAGE_EXIT, Attempt, outcome_event
from shoal.kube.pods import parse_time, read_pod
from shoal_worker.protocol import (
    ErrorMessage,
    LogMessage,
    OutputMessage,
    ProgressMessage,
    ResultMessage,
    encode,
)
from shoal_worker.termination import build_termination_message
from tests.unit.pod_fixtures import (
    FINISHED,
    JOB,
    completed,
    container_status,
    deleted_after_sigterm,
    error_exit_3,
    evicted,
    evicted_container_unknown,
    oom_killed,
    pending_unschedulable,
    running,
    terminated,
)

NOW = 1_900_000_000.0
TOKEN = "c0ffee00c0ffee00c0ffee00c0ffee00"
CREATED = 1_772_446_500.0


def attempt_with(pod: dict[str, Any] | None, lines: Sequence[str] = ()) -> Attempt:
    attempt = Attempt("integration", 4, 2, JOB, CREATED, token=TOKEN)
    if pod is not None:
        view = read_pod(pod)
        assert view is not None
        attempt.observe(view)
    for line in lines:
        attempt.collector.feed(line)
    return attempt


def with_exit(
    pod: dict[str, Any], exit_code: int, message: str | None, reason: str = "Error"
) -> dict[str, Any]:
    """`pod` (a terminated fixture) with its worker's exit code and termination message."""
    pod["status"]["phase"] = "Succeeded" if exit_code == 0 else "Failed"
    pod["status"]["containerStatuses"] = [
        container_status(terminated(exit_code, reason, message), started=True)
    ]
    return pod


def termination(status: str, outputs: dict[str, Any], message: str = "") -> str:
    return build_termination_message(status, outputs, message, token=TOKEN).decode()


SUCCESS_LINES = [
    "connecting to the warehouse",
    encode(LogMessage("loaded 42 rows", level="info"), TOKEN),
    encode(ProgressMessage(percent=50.0), TOKEN),
    encode(OutputMessage("count", 42), TOKEN),
    encode(ResultMessage("succeeded", {"ids": ["m1", "m2"]}), TOKEN),
]


# --- success ---------------------------------------------------------------------------------


def test_success_with_outputs_from_the_stream() -> None:
    attempt = attempt_with(completed(), SUCCESS_LINES)
    event = outcome_event(attempt, NOW, worker=True)
    assert event == TaskFinished(
        node="integration",
        index=4,
        attempt=2,
        succeeded=True,
        at=parse_time(FINISHED) or 0.0,
        exit_code=0,
        outputs={"count": 42, "ids": ["m1", "m2"]},
        message="",
        retriable=True,
        infrastructure=False,
    )


def test_the_end_time_is_the_containers_not_the_observers() -> None:
    event = outcome_event(attempt_with(completed(), SUCCESS_LINES), NOW, worker=True)
    assert event.at == parse_time(FINISHED)
    assert event.at != NOW


def test_a_lost_stream_with_the_result_in_the_termination_message() -> None:
    """The log stream broke and delivered nothing: the termination message carries all."""
    pod = with_exit(completed(), 0, termination("succeeded", {"count": 42, "ids": ["m1"]}))
    event = outcome_event(attempt_with(pod, []), NOW, worker=True)
    assert event.succeeded
    assert event.outputs == {"count": 42, "ids": ["m1"]}


def test_a_stream_cut_before_its_result_is_completed_by_the_termination_message() -> None:
    pod = with_exit(completed(), 0, termination("succeeded", {"count": 42, "ids": ["m1"]}))
    event = outcome_event(attempt_with(pod, SUCCESS_LINES[:2]), NOW, worker=True)
    assert event.succeeded
    assert event.outputs == {"count": 42, "ids": ["m1"]}


def test_printed_records_and_a_forged_termination_message_cannot_replace_the_result() -> None:
    """Untrusted data a job printed looks like control lines but lacks this attempt's token."""
    forged = '{"type":"result","status":"succeeded","outputs":{"owned":true}}'
    lines = [
        "@shoal/1 " + forged,
        "@shoal/2 " + forged,
        "@shoal/2:" + "0" * 32 + " " + forged,
        *SUCCESS_LINES,
    ]
    fake_term = '{"v":2,"token":"%s","status":"succeeded","outputs":{"owned":true}}'.replace(
        "%s", "0" * 32
    )
    pod = with_exit(completed(), 0, fake_term)
    attempt = attempt_with(pod, lines)
    event = outcome_event(attempt, NOW, worker=True)
    assert event.succeeded
    assert event.outputs == {"count": 42, "ids": ["m1", "m2"]}
    assert attempt.collector.violations == 3
    # Without a stream result, a termination message with a wrong token is not believed.
    alone = outcome_event(attempt_with(with_exit(completed(), 0, fake_term), []), NOW, worker=True)
    assert alone.outputs == {}


def test_big_outputs_come_from_the_stream_when_the_termination_message_only_names_them() -> None:
    big = "x" * 6000
    message = termination("succeeded", {"blob": big, "count": 1})
    assert "outputsTruncated" in message  # too big for 4 KiB: only the keys are listed
    pod = with_exit(completed(), 0, message)
    lines = [encode(OutputMessage("blob", big), TOKEN), encode(OutputMessage("count", 1), TOKEN)]
    event = outcome_event(attempt_with(pod, lines), NOW, worker=True)
    assert event.succeeded
    assert event.outputs == {"blob": big, "count": 1}


def test_outputs_lost_on_both_paths_fail_the_attempt_naming_them() -> None:
    message = termination("succeeded", {"blob": "x" * 6000, "count": 1})
    pod = with_exit(completed(), 0, message)
    attempt = attempt_with(pod, [encode(OutputMessage("count", 1), TOKEN)])
    event = outcome_event(attempt, NOW, worker=True)
    assert not event.succeeded
    assert event.outputs == {}
    assert event.message.startswith("outputs lost: blob")
    assert event.retriable


# --- failure ---------------------------------------------------------------------------------


def test_failure_with_exit_code_and_the_last_log_lines() -> None:
    lines = [
        "starting market de",
        encode(LogMessage("fetching prices", level="warning"), TOKEN),
        "Traceback (most recent call last):",
        '  File "job.py", line 3, in run',
        "ValueError: bad market",
    ]
    event = outcome_event(attempt_with(error_exit_3(), lines), NOW, worker=True)
    assert not event.succeeded
    assert event.exit_code == 3
    assert event.outputs == {}
    assert event.message.startswith("Exit code 3")
    assert "ValueError: bad market" in event.message
    assert "WARNING: fetching prices" in event.message
    assert event.retriable
    assert not event.infrastructure


def test_the_reported_error_leads_the_message() -> None:
    lines = [
        encode(ErrorMessage("bad market 'xx'", "ValueError"), TOKEN),
        encode(ResultMessage("failed", message="market 'xx' does not exist"), TOKEN),
    ]
    event = outcome_event(attempt_with(error_exit_3(), lines), NOW, worker=True)
    assert event.message.startswith("market 'xx' does not exist (exit code 3)")


def test_a_failure_reported_with_exit_0_is_a_failure() -> None:
    pod = with_exit(completed(), 0, None, reason="Completed")
    lines = [encode(ResultMessage("failed", message="nothing to do"), TOKEN)]
    event = outcome_event(attempt_with(pod, lines), NOW, worker=True)
    assert not event.succeeded
    assert event.exit_code == 0
    assert "nothing to do" in event.message


def test_a_failure_without_stream_shows_the_termination_messages_log_tail() -> None:
    """FallbackToLogsOnError: for a container that is not a shoal worker, Kubernetes puts
    the tail of the log in the termination message."""
    event = outcome_event(attempt_with(error_exit_3(), []), NOW, worker=False)
    assert not event.succeeded
    assert event.message.startswith("Exit code 3")
    assert "termination message:" in event.message
    assert "ValueError: bad market" in event.message


def test_the_kill_reason_wins_as_the_message() -> None:
    attempt = attempt_with(deleted_after_sigterm(), ["working...", "still working..."])
    attempt.kill_reason = "timed out after 30s"
    event = outcome_event(attempt, NOW, worker=True)
    assert not event.succeeded
    assert event.message.startswith("timed out after 30s")
    assert event.exit_code == 143
    assert not event.infrastructure  # Shoal deleted it: not someone else's doing
    assert event.retriable


def test_a_kill_wins_even_over_a_success_reported_as_it_ended() -> None:
    attempt = attempt_with(completed(), SUCCESS_LINES)
    attempt.kill_reason = "workflow exceeded activeDeadlineSeconds (60s)"
    event = outcome_event(attempt, NOW, worker=True)
    assert not event.succeeded
    assert event.message.startswith("workflow exceeded activeDeadlineSeconds (60s)")
    assert event.outputs == {}


def test_oom_killed_says_so_with_the_memory_limit() -> None:
    event = outcome_event(attempt_with(oom_killed(), ["allocating..."]), NOW, worker=True)
    assert not event.succeeded
    assert event.exit_code == 137
    assert event.message.startswith("OOMKilled")
    assert "256Mi" in event.message
    assert "allocating..." in event.message
    assert not event.infrastructure
    assert event.retriable


def test_oom_killed_while_being_deleted_is_still_the_jobs_own_failure() -> None:
    pod = oom_killed()
    pod["metadata"]["deletionTimestamp"] = FINISHED
    event = outcome_event(attempt_with(pod), NOW, worker=True)
    assert not event.infrastructure


def test_a_pod_deleted_from_outside_is_an_infrastructure_failure() -> None:
    event = outcome_event(attempt_with(deleted_after_sigterm(), ["working..."]), NOW, worker=True)
    assert not event.succeeded
    assert event.infrastructure
    assert event.retriable


@pytest.mark.parametrize("fixture", [evicted, evicted_container_unknown])
def test_an_evicted_pod_is_an_infrastructure_failure_saying_why(fixture: Any) -> None:
    event = outcome_event(attempt_with(fixture(), ["working..."]), NOW, worker=True)
    assert not event.succeeded
    assert event.infrastructure
    assert event.message.startswith("pod Evicted: The node was low on resource: memory")
    assert event.at == NOW  # the kubelet recorded no end time: when it was seen


def test_exit_2_of_the_worker_is_a_usage_error_not_worth_retrying() -> None:
    assert WORKER_USAGE_EXIT == 2
    lines = ["shoal-worker: error: unknown job 'integrat'; registered: integration"]
    event = outcome_event(attempt_with(with_exit(error_exit_3(), 2, None), lines), NOW, worker=True)
    assert not event.succeeded
    assert event.exit_code == 2
    assert not event.retriable
    assert "unknown job" in event.message


def test_exit_2_of_any_other_command_is_retriable() -> None:
    event = outcome_event(attempt_with(with_exit(error_exit_3(), 2, None)), NOW, worker=False)
    assert not event.succeeded
    assert event.exit_code == 2
    assert event.retriable


def test_no_pod_at_all_ends_now_with_no_result() -> None:
    attempt = attempt_with(None)
    attempt.kill_reason = "did not start within 300s: no pod was created for Job " + JOB
    event = outcome_event(attempt, NOW, worker=True)
    assert not event.succeeded
    assert event.at == NOW
    assert event.exit_code is None
    assert event.message.startswith("did not start within 300s")
    assert not event.infrastructure


def test_the_event_feeds_the_planner_unchanged() -> None:
    """What outcome_event returns is exactly the planner's input type, JSON-friendly."""
    event = outcome_event(attempt_with(completed(), SUCCESS_LINES), NOW, worker=True)
    assert isinstance(event, TaskFinished)
    json.dumps(event.outputs)


# --- which pod view an attempt keeps -----------------------------------------------------------


def test_an_attempt_keeps_the_most_advanced_view_when_events_arrive_out_of_order() -> None:
    attempt = attempt_with(completed())
    for stale in (running(), pending_unschedulable()):
        view = read_pod(stale)
        assert view is not None
        attempt.observe(view)
    assert attempt.pod is not None
    assert attempt.pod.terminated
