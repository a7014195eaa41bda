"""Job registration and lookup.

Jobs come from four places: ``@job`` in modules named by ``--import``/``SHOAL_IMPORT``,
modules named by entry points in group ``shoal.jobs`` (how an installed package brings
its jobs into a worker image), the built-in ``shoal.*`` jobs, and ``module:function``
specs imported on demand. Entry points are only scanned when a name is not found
otherwise: ``importlib.metadata`` is slow to import and pod start-up time matters.
"""

from __future__ import annotations

import importlib

from .errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TypeVar, overload

    F = TypeVar("F", bound=Callable[..., Any])
else:

    def overload(func: object) -> object:  # typing stays unimported at run time
        return func


ENTRY_POINT_GROUP = "shoal.jobs"
RESERVED_PREFIX = "shoal."


class JobSpec:
    """A runnable job: its name and the function behind it.

    A plain class, not a dataclass: generating dataclass methods costs start-up time.
    """

    __slots__ = ("func", "name")

    def __init__(self, name: str, func: Callable[..., Any]) -> None:
        self.name = name
        self.func = func

    def __repr__(self) -> str:
        return f"JobSpec({self.name!r}, {self.source})"

    @property
    def source(self) -> str:
        """``module:qualname`` of the function, for messages."""
        module = getattr(self.func, "__module__", None) or "?"
        qualname = getattr(self.func, "__qualname__", None) or repr(self.func)
        return f"{module}:{qualname}"


class UnknownJobError(UsageError):
    """No job by that name; the message lists the known ones and the closest match."""

    def __init__(self, name: str, known: Iterable[str], problems: Iterable[str] = ()) -> None:
        import difflib

        self.name = name
        self.known = sorted(known)
        close = difflib.get_close_matches(name, self.known, n=1, cutoff=0.5)
        self.suggestion = close[0] if close else None
        text = f"unknown job {name!r}"
        if self.suggestion:
            text += f"; did you mean {self.suggestion!r}?"
        text += f" Known jobs: {', '.join(self.known) or '(none)'}"
        self.problems = list(problems)
        if self.problems:
            text += ". Entry points that failed to load: " + "; ".join(self.problems)
        super().__init__(text)


_registry: dict[str, JobSpec] = {}
_entry_points_loaded = False
_entry_point_problems: list[str] = []


def register(func: Callable[..., Any], name: str | None = None) -> JobSpec:
    """Register ``func`` as job ``name`` (default: its ``__name__``)."""
    if not callable(func):
        raise TypeError(f"a job must be callable, got {func!r}")
    job_name = name if name is not None else getattr(func, "__name__", "")
    if not isinstance(job_name, str) or not job_name.strip():
        raise ValueError(f"a job name must be a non-empty string, got {job_name!r}")
    if job_name.startswith(RESERVED_PREFIX):
        raise ValueError(
            f"job {job_name!r}: names starting with {RESERVED_PREFIX!r} are reserved "
            "for the built-in jobs"
        )
    spec = JobSpec(job_name, func)
    existing = _registry.get(job_name)
    # The same function registered twice (a module imported as __main__ and by name,
    # or reloaded) is harmless; two different functions under one name are not.
    if existing is not None and existing.source != spec.source:
        raise ValueError(
            f"job {job_name!r} is already registered by {existing.source}; "
            f"cannot register {spec.source} under the same name"
        )
    _registry[job_name] = spec
    return spec


@overload
def job(name: F, /) -> F: ...
@overload
def job(name: str | None = None, /) -> Callable[[F], F]: ...  # noqa: F811
def job(name: Any = None, /) -> Any:  # noqa: F811
    """Register a job function: ``@job``, ``@job()`` or ``@job("name")``.

    The function is returned unchanged, so it stays directly callable in tests.
    """
    if callable(name):
        register(name)
        return name
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"@job takes a non-empty name string, got {name!r}")

    def decorate(func: F) -> F:
        register(func, name)
        return func

    return decorate


def _ensure_builtins() -> None:
    if "shoal.noop" not in _registry:
        from .builtin import BUILTINS

        for name, func in BUILTINS.items():
            _registry[name] = JobSpec(name, func)


def get(name: str) -> JobSpec | None:
    """The job registered as ``name`` (built-ins included), or None."""
    _ensure_builtins()
    return _registry.get(name)


def names() -> list[str]:
    """Sorted names of the jobs registered so far (entry points only once loaded)."""
    _ensure_builtins()
    return sorted(_registry)


def import_modules(modules: Iterable[str]) -> None:
    """Import job modules; a failure is a UsageError naming the module."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise UsageError(
                f"cannot import job module {module!r}: {type(exc).__name__}: {exc}"
            ) from exc


def load_entry_points() -> list[str]:
    """Import every ``shoal.jobs`` entry point once; returns problems, never raises.

    One broken package must not take every job in the image down with it, so failures
    are collected (and reported if the wanted job is then missing).
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return list(_entry_point_problems)
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as exc:
            dist = getattr(entry.dist, "name", None) or "?"
            _entry_point_problems.append(
                f"{entry.name} = {entry.value} (from {dist}): {type(exc).__name__}: {exc}"
            )
    return list(_entry_point_problems)


def entry_point_problems() -> list[str]:
    """Entry points that failed to load (empty until they have been scanned)."""
    return list(_entry_point_problems)


def resolve(spec: str) -> JobSpec:
    """Find the job for ``spec``: a registered name, or ``module:attr.path``.

    Raises UsageError (UnknownJobError for an unknown name).
    """
    if ":" in spec:
        return _import_spec(spec)
    found = get(spec)
    if found is not None:
        return found
    problems = load_entry_points()
    found = _registry.get(spec)
    if found is not None:
        return found
    raise UnknownJobError(spec, _registry, problems)


def _import_spec(spec: str) -> JobSpec:
    module_name, _, path = spec.partition(":")
    if not module_name or not path:
        raise UsageError(f"job {spec!r}: expected 'module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise UsageError(
            f"job {spec!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"job {spec!r}: {module_name!r} has no attribute {path!r}") from None
    if not callable(target):
        raise UsageError(f"job {spec!r}: {path!r} is not callable")
    return JobSpec(spec, target)
