"""The job-author SDK: @job, typed arguments, Context, progress coalescing, stdout safety."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any, Literal, Optional, Union

import pytest

from shoal.core.collector import StreamCollector
from shoal_worker import Context, JobFailed, OutputError, UsageError, job, register
from shoal_worker import registry as registry_module
from shoal_worker.args import bind, check_value, describe_type
from shoal_worker.emit import MAX_PARTIAL_LINE, Emitter, LineSafeWriter
from shoal_worker.protocol import (
    LogMessage,
    OutputMessage,
    ProgressMessage,
    parse_line,
)
from shoal_worker.registry import JobSpec, UnknownJobError, resolve

TOKEN = "e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0"


@pytest.fixture(autouse=True)
def attempt_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor's token, which a Context's own Emitter writes on every line."""
    monkeypatch.setenv("SHOAL_PROTOCOL_TOKEN", TOKEN)


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    saved = dict(registry_module._registry)
    yield
    registry_module._registry.clear()
    registry_module._registry.update(saved)


def messages(stream: io.StringIO) -> list[Any]:
    return [parse_line(text, TOKEN) for text in stream.getvalue().splitlines()]


# --- registration --------------------------------------------------------------------


def test_job_decorator_with_and_without_a_name() -> None:
    @job
    def plain() -> None: ...

    @job()
    def empty_parens() -> None: ...

    @job("custom-name")
    def named() -> int:
        return 1

    assert resolve("plain").func is plain
    assert resolve("empty_parens").func is empty_parens
    assert resolve("custom-name").func is named
    assert named() == 1  # the function is returned unchanged


def test_duplicate_name_is_a_clear_error_naming_both_functions() -> None:
    @job("dup")
    def first() -> None: ...

    with pytest.raises(ValueError, match="dup") as info:

        @job("dup")
        def second() -> None: ...

    assert "first" in str(info.value)
    assert "second" in str(info.value)


def test_registering_the_same_function_twice_is_harmless() -> None:
    def again() -> None: ...

    register(again, "again")
    register(again, "again")
    assert resolve("again").func is again


@pytest.mark.parametrize("bad", [3, ""])
def test_bad_job_names_are_rejected(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        job(bad)


def test_builtins_are_always_known_and_their_prefix_is_reserved() -> None:
    with pytest.raises(ValueError, match="reserved"):

        @job("shoal.mine")
        def mine() -> None: ...

    assert {"shoal.noop", "shoal.echo", "shoal.sleep", "shoal.fail"} <= set(registry_module.names())


def test_unknown_job_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownJobError) as info:
        resolve("shoal.nop")
    assert info.value.suggestion == "shoal.noop"
    assert "did you mean 'shoal.noop'?" in str(info.value)
    assert "shoal.echo" in str(info.value)


def test_module_function_specs_are_imported_directly() -> None:
    spec = resolve("shoal_worker.builtin:echo")
    assert spec.name == "shoal_worker.builtin:echo"
    assert spec.func(a=1) == {"a": 1}
    assert resolve("json:dumps").func([1]) == "[1]"
    assert resolve("shoal_worker.context:Context.log").name == "shoal_worker.context:Context.log"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("json:no_such_function", "has no attribute 'no_such_function'"),
        ("json:__doc__", "is not callable"),
        (":f", "expected 'module:function'"),
        ("json:", "expected 'module:function'"),
    ],
)
def test_bad_module_function_specs(spec: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        resolve(spec)


# --- typed arguments -----------------------------------------------------------------


def run_bound(func: Any, args: dict[str, Any], name: str = "j") -> Any:
    ctx = Context(args, stream=io.StringIO(), env={})
    return bind(JobSpec(name, func), args, ctx)()


def test_context_is_passed_first_by_annotation_or_by_name() -> None:
    def annotated(c: Context, x: int) -> Any:
        return (type(c).__name__, x)

    def named(ctx, x):  # type: ignore[no-untyped-def]
        return (type(ctx).__name__, x)

    def string_annotation(c: "Context", x: int) -> Any:  # noqa: UP037
        return (type(c).__name__, x)

    def no_context(x: int) -> Any:
        return x

    assert run_bound(annotated, {"x": 1}) == ("Context", 1)
    assert run_bound(named, {"x": 1}) == ("Context", 1)
    assert run_bound(string_annotation, {"x": 1}) == ("Context", 1)
    assert run_bound(no_context, {"x": 1}) == 1


def region_job(ctx: Context, region: str, limit: int = 10) -> None: ...


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"region": 3}, "job 'j': argument 'region': expected str, got int"),
        ({"region": "eu", "limit": "5"}, "argument 'limit': expected int, got str"),
        ({"region": "eu", "limit": True}, "argument 'limit': expected int, got bool"),
        ({"region": None}, "argument 'region': expected str, got None"),
        ({}, "missing required argument 'region'"),
        ({"region": "eu", "regoin": 1}, "unknown argument 'regoin'"),
        ({"regoin": "eu"}, "unknown argument 'regoin' (did you mean 'region'?)"),
    ],
)
def test_argument_errors_are_clear(args: dict[str, Any], problem: str) -> None:
    with pytest.raises(UsageError) as info:
        run_bound(region_job, args)
    assert problem in str(info.value)
    assert "Expected: region: str, limit: int = 10" in str(info.value)


def test_every_problem_is_listed_at_once() -> None:
    def two(a: int, b: str) -> None: ...

    with pytest.raises(UsageError) as info:
        run_bound(two, {"a": "x", "c": 1})
    text = str(info.value)
    assert "missing required argument 'b'" in text
    assert "unknown argument 'c'" in text
    assert "argument 'a': expected int, got str" in text


def test_kwargs_accepts_unknown_arguments_and_checks_their_annotation() -> None:
    def flexible(ctx: Context, fixed: int = 0, **rest: str) -> dict[str, Any]:
        return {"fixed": fixed, **rest}

    assert run_bound(flexible, {"x": "1", "y": "2"}) == {"fixed": 0, "x": "1", "y": "2"}
    with pytest.raises(UsageError, match="argument 'x': expected str, got int"):
        run_bound(flexible, {"x": 1})


def test_no_arguments_expected() -> None:
    def none() -> None: ...

    with pytest.raises(UsageError, match="Expected: no arguments"):
        run_bound(none, {"x": 1})


def test_positional_only_parameters_cannot_take_json_arguments() -> None:
    def positional(a: int, /) -> None: ...

    with pytest.raises(UsageError, match="positional-only"):
        run_bound(positional, {"a": 1})


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [
        (str, ["", "x"], [1, None, b"x"]),
        (int, [0, -5, 10**20], [1.0, True, "1", None]),
        (float, [1, 1.5, -0.0], [True, "1.5", None]),
        (bool, [True, False], [0, 1, "true"]),
        (list, [[], [1, "a"]], [{}, "ab", None]),
        (dict, [{}, {"a": 1}], [[], None]),
        (None, [None], [0, ""]),
        (int | None, [None, 3], ["3", 3.5]),
        (Optional[int], [None, 3], ["3"]),  # noqa: UP045
        (Union[int, str], [1, "a"], [1.5, None]),  # noqa: UP007
        (list[int], [[], [1, 2]], [[1, "2"], [True], "12"]),
        (list[int | None], [[1, None]], [["x"]]),
        (dict[str, int], [{}, {"a": 1}], [{"a": "1"}, [("a", 1)]]),
        (dict[str, list[str]], [{"a": ["x"]}], [{"a": [1]}]),
        (Literal["a", "b"], ["a", "b"], ["c", 1]),
        (Literal[1], [1], [True, 1.0]),
        (Any, [1, "x", None, [], {}], []),
        (object, [1, None], []),
        ("SomeUnresolvableName", [1, "x"], []),
        (tuple[int, int], [[1, 2], "anything"], []),  # not a basic type: unchecked
    ],
)
def test_check_value(annotation: Any, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        assert check_value(value, annotation, "arg") is None, value
    for value in bad:
        assert check_value(value, annotation, "arg") is not None, value


def test_check_value_points_at_the_bad_element() -> None:
    assert check_value([1, 2, "x"], list[int], "ids") == (
        "argument 'ids[2]': expected int, got str"
    )
    assert check_value({"a": 1, "b": "2"}, dict[str, int], "m") == (
        "argument \"m['b']\": expected int, got str"
    )
    assert check_value("x", int | None, "n") == "argument 'n': expected int | None, got str"


def test_describe_type() -> None:
    assert describe_type(str) == "str"
    assert describe_type(list[int]) == "list[int]"
    assert describe_type(Optional[int]) == "Optional[int]"  # noqa: UP045
    assert describe_type(None) == "None"


def test_string_annotations_are_resolved_in_the_job_module() -> None:
    namespace: dict[str, Any] = {}
    exec(  # a module written with `from __future__ import annotations`
        "from __future__ import annotations\n"
        "def f(ctx, n: int, names: list[str] | None = None):\n"
        "    return n\n",
        namespace,
    )
    assert run_bound(namespace["f"], {"n": 2}) == 2
    with pytest.raises(UsageError) as info:
        run_bound(namespace["f"], {"n": 2, "names": "x"})
    assert "argument 'names': expected list[str] | None, got str" in str(info.value)


# --- Context -------------------------------------------------------------------------


def test_context_metadata_comes_from_the_environment() -> None:
    env = {
        "SHOAL_WORKFLOW": "wf",
        "SHOAL_NAMESPACE": "ns",
        "SHOAL_NODE": "node",
        "SHOAL_ITEM_INDEX": "7",
        "SHOAL_ATTEMPT": "3",
    }
    ctx = Context({"a": 1}, stream=io.StringIO(), env=env)
    assert (ctx.workflow, ctx.namespace, ctx.node, ctx.item_index, ctx.attempt) == (
        "wf",
        "ns",
        "node",
        7,
        3,
    )
    assert ctx.args == {"a": 1}
    bare = Context(stream=io.StringIO(), env={})
    assert (bare.workflow, bare.item_index, bare.attempt) == (None, None, 1)


def test_bad_metadata_is_an_error_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="SHOAL_ITEM_INDEX"):
        Context(stream=io.StringIO(), env={"SHOAL_ITEM_INDEX": "x"})


def test_context_writes_numbered_protocol_lines() -> None:
    out = io.StringIO()
    ctx = Context(stream=out, env={})
    ctx.log("hello", user="ann")
    ctx.log("careful", level="warning")
    ctx.set_output("count", 3)
    ctx.progress(0, "start")
    assert messages(out) == [
        LogMessage("hello", "info", {"user": "ann"}, 1),
        LogMessage("careful", "warning", {}, 2),
        OutputMessage("count", 3, 3),
        ProgressMessage(0, "start", None, None, 4),
    ]
    assert ctx.outputs == {"count": 3}


def test_log_fields_that_json_cannot_carry_become_repr() -> None:
    out = io.StringIO()
    Context(stream=out, env={}).log("x", thing=object, n=1)
    (msg,) = messages(out)
    assert msg.fields == {"thing": "<class 'object'>", "n": 1}


def test_log_rejects_unknown_levels() -> None:
    with pytest.raises(ValueError, match="log level"):
        Context(stream=io.StringIO(), env={}).log("x", level="fatal")


def test_set_output_rejects_bad_keys_and_values_naming_the_key() -> None:
    ctx = Context(stream=io.StringIO(), env={})
    with pytest.raises(OutputError, match="non-empty"):
        ctx.set_output("", 1)
    with pytest.raises(OutputError, match="output 'when' is not JSON-serialisable"):
        ctx.set_output("when", object())
    with pytest.raises(OutputError, match="output 'ratio' is not JSON-serialisable"):
        ctx.set_output("ratio", float("nan"))


def test_outputs_are_snapshots_as_json_carries_them() -> None:
    ctx = Context(stream=io.StringIO(), env={})
    value: dict[str, tuple[int, ...]] = {"items": (1, 2)}
    ctx.set_output("v", value)
    value["items"] = (3,)
    assert ctx.outputs == {"v": {"items": [1, 2]}}


def test_fail_raises_job_failed() -> None:
    with pytest.raises(JobFailed, match="nope") as info:
        Context(stream=io.StringIO(), env={}).fail("nope", exit_code=4)
    assert info.value.exit_code == 4
    with pytest.raises(ValueError, match=r"1\.\.125"):
        JobFailed("x", exit_code=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_coalesced_but_edges_always_go_out() -> None:
    out, clock = io.StringIO(), FakeClock()
    ctx = Context(stream=out, env={}, clock=clock)
    ctx.progress(0)
    for percent in range(1, 100):  # a tight loop: 99 updates within 0.099 s
        clock.now += 0.001
        ctx.progress(percent)
    ctx.progress(100)
    assert [m.percent for m in messages(out)] == [0, 100]

    clock.now += 1
    ctx.progress(40)  # the interval has passed: goes out
    clock.now += 0.05
    ctx.progress(45)  # too soon: held
    ctx.progress(50, "latest")  # too soon: replaces the held one
    clock.now += 0.06
    ctx.progress(60)  # interval passed: goes out, the held one is dropped
    clock.now += 0.01
    ctx.progress(70, "held to the end")
    ctx.flush_progress()
    ctx.flush_progress()  # nothing left
    assert [(m.percent, m.message) for m in messages(out)][2:] == [
        (40, None),
        (60, None),
        (70, "held to the end"),
    ]


def test_progress_by_count_treats_start_and_end_as_edges() -> None:
    out, clock = io.StringIO(), FakeClock()
    ctx = Context(stream=out, env={}, clock=clock)
    for current in range(11):
        ctx.progress(current=current, total=10)
    assert [m.current for m in messages(out)] == [0, 10]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"percent": 101}, {"percent": -1}, {"percent": float("nan")}, {"current": -1}],
)
def test_progress_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="progress"):
        Context(stream=io.StringIO(), env={}).progress(**kwargs)


def test_context_is_thread_safe() -> None:
    out = io.StringIO()
    ctx = Context(stream=out, env={})

    def work(worker: int) -> None:
        for index in range(200):
            ctx.log(f"w{worker} {index}")
            ctx.set_output(f"w{worker}-{index}", index)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    parsed = messages(out)
    assert len(parsed) == 1600
    assert sorted(m.seq for m in parsed) == list(range(1, 1601))
    assert len(ctx.outputs) == 800


# --- stdout safety -------------------------------------------------------------------


def test_line_safe_writer_keeps_protocol_lines_at_column_zero() -> None:
    target = io.StringIO()
    lock = threading.RLock()
    writer = LineSafeWriter(target, lock)
    emitter = Emitter(target, lock)
    writer.write("partial ")  # no newline yet: held back
    emitter.emit(OutputMessage("k", 1))
    writer.write("line\nnext")
    writer.drain()
    collector = StreamCollector(TOKEN)
    for text in target.getvalue().splitlines():
        collector.feed(text)
    assert collector.outputs == {"k": 1}
    assert collector.tail() == ["partial line", "next"]


def test_line_safe_writer_keeps_each_threads_partial_line_apart() -> None:
    target = io.StringIO()
    writer = LineSafeWriter(target, threading.RLock())
    started, release = threading.Event(), threading.Event()

    def other() -> None:
        writer.write("other-")
        started.set()
        release.wait(timeout=30)
        writer.write("thread\n")

    thread = threading.Thread(target=other)
    thread.start()
    assert started.wait(timeout=30)
    writer.write("main-")
    writer.write("thread\n")
    release.set()
    thread.join(timeout=30)
    assert target.getvalue().splitlines() == ["main-thread", "other-thread"]


def test_line_safe_writer_bounds_an_endless_line() -> None:
    target = io.StringIO()
    writer = LineSafeWriter(target, threading.RLock())
    writer.write("\r" + "x" * MAX_PARTIAL_LINE)
    assert target.getvalue().endswith("\n")
    with pytest.raises(TypeError):
        writer.write(b"bytes")  # type: ignore[arg-type]


def test_a_closed_stdout_does_not_fail_the_job() -> None:
    out = io.StringIO()
    emitter = Emitter(out)
    out.close()
    ctx = Context(emitter=emitter, env={})
    ctx.set_output("k", 1)
    ctx.log("still fine")
    assert emitter.broken
    assert ctx.outputs == {"k": 1}
