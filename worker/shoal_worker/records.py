"""Value classes declared like dataclasses, without `dataclasses`' code generation.

`shoal run` defines some fifty small value classes before it runs anything (decisions,
events, protocol messages, lock and memo records). As dataclasses each cost about half a
millisecond to generate (`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__` and a
second class for the slots): a sixth of a 1-node run's start-up. A `Record` subclass is
declared the same way (annotated fields, defaults, `field(...)`), and gets:

- `__slots__` from its fields, set before the class is made (no second class);
- `__eq__`, `__hash__`, `__repr__`, pickling and `replace` shared from `Record`, reading
  the field names the class stores, instead of a method generated per class;
- an `__init__` generated once a class has been built `GENERATE_AFTER` times (a generic
  one binds the arguments until then), so a class built a few times never pays for the
  compilation, and one built per item gets a plain function as fast as a dataclass's.

Frozen by default (`class Task(Record, frozen=False)` for a mutable one, which like a
mutable dataclass is unhashable). Type checkers read the classes as dataclasses
(`dataclass_transform`). Standard library only: the worker's protocol messages use it.
"""

from __future__ import annotations

from operator import attrgetter

TYPE_CHECKING = False  # `typing` at run time costs start-up; the checker reads these
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, Self, dataclass_transform
else:

    def dataclass_transform(**_: object) -> object:
        return lambda decorated: decorated


__all__ = ["FrozenRecordError", "Record", "field", "record_fields"]

_MISSING: Any = object()
"""No default (for a field), or not passed (for a parameter with a default factory)."""


class FrozenRecordError(AttributeError):
    """A field of a frozen record was assigned or deleted after construction."""


class _Field:
    """What `field(...)` declares about one field."""

    __slots__ = ("compare", "default", "factory", "init", "repr")

    def __init__(
        self,
        default: Any = _MISSING,
        factory: Callable[[], Any] | None = None,
        *,
        init: bool = True,
        repr: bool = True,  # as dataclasses.field names it
        compare: bool = True,
    ) -> None:
        self.default, self.factory = default, factory
        self.init, self.repr, self.compare = init, repr, compare


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    init: bool = True,
    repr: bool = True,  # as dataclasses.field names it
    compare: bool = True,
) -> Any:
    """A field's default, default factory, and whether `__init__`, `repr` and equality
    include it (as `dataclasses.field`)."""
    return _Field(default, default_factory, init=init, repr=repr, compare=compare)


def record_fields(cls: type[Record] | Record) -> tuple[str, ...]:
    """Every field of a record class (or record), in declaration order."""
    return cls.__record_fields__


def _own_fields(name: str, namespace: dict[str, Any]) -> dict[str, _Field]:
    """The fields a class body declares, their defaults removed from the namespace (a slot
    and a class attribute cannot share a name)."""
    own: dict[str, _Field] = {}
    for field_name, annotation in namespace.get("__annotations__", {}).items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = namespace.pop(field_name, _MISSING)
        spec = value if isinstance(value, _Field) else _Field(value)
        if spec.default.__class__ in (list, dict, set):
            raise ValueError(f"{name}.{field_name}: a mutable default needs default_factory")
        own[field_name] = spec
    return own


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class _RecordMeta(type):
    """Turns a class body's annotated fields into slots and the record's tables."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], frozen: bool = True
    ) -> _RecordMeta:
        records = [base for base in bases if isinstance(base, _RecordMeta)]
        if not records:  # Record itself: no fields of its own
            return super().__new__(mcls, name, bases, namespace)
        if "__slots__" in namespace:
            raise TypeError(f"{name}: a record's slots are its annotated fields")
        if any(getattr(base, "__record_frozen__", frozen) != frozen for base in records):
            raise TypeError(f"{name}: a record and its bases are all frozen or all mutable")
        specs: dict[str, _Field] = {}
        for base in reversed(records):
            specs.update(getattr(base, "__record_specs__", {}))
        own = _own_fields(name, namespace)
        specs.update(own)
        _check_order(name, specs)
        namespace["__slots__"] = tuple(own)
        namespace["__record_specs__"] = specs
        namespace["__record_fields__"] = tuple(specs)
        namespace["__record_shown__"] = tuple(n for n, s in specs.items() if s.repr)
        namespace["__record_key__"] = staticmethod(
            _key_of(tuple(n for n, s in specs.items() if s.compare))
        )
        namespace["__match_args__"] = tuple(n for n, s in specs.items() if s.init)
        namespace["__record_frozen__"] = frozen
        if not frozen:  # a mutable record may change after it was hashed: none, as dataclasses
            namespace.update(__hash__=None, __setattr__=object.__setattr__)
            namespace["__delattr__"] = object.__delattr__
        cls = super().__new__(mcls, name, bases, namespace)
        if "__init__" not in namespace:
            type.__setattr__(cls, "__init__", _first_init(cls))
        return cls


def _check_order(name: str, specs: dict[str, _Field]) -> None:
    """As a function signature: no field without a default after one with a default."""
    seen_default = False
    for field_name, spec in specs.items():
        if not spec.init:
            continue
        has_default = spec.default is not _MISSING or spec.factory is not None
        if seen_default and not has_default:
            raise TypeError(f"{name}.{field_name}: a field without a default follows a default")
        seen_default = seen_default or has_default


def _key_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The compared fields of a record as one tuple (attrgetter gives one only for two or
    more names)."""
    if len(names) > 1:
        return attrgetter(*names)
    return lambda record: tuple(getattr(record, name) for name in names)


GENERATE_AFTER = 16
"""Constructions of a class through the generic `__init__` before its own is generated:
compiling one costs about 0.3 ms, which a class built a few times (the validator's) would
not earn back, and one built per item (the run's) earns back at once."""


def _first_init(cls: type) -> Callable[..., None]:
    """A generic `__init__` for the class's first constructions; then it generates the
    class's own, installs it, and calls it."""
    built = [0]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        built[0] += 1
        if built[0] < GENERATE_AFTER:
            _bind(cls, self, args, kwargs)
            return
        init = _generate_init(cls)
        type.__setattr__(cls, "__init__", init)
        init(self, *args, **kwargs)

    return __init__


def _bind(cls: Any, record: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """What the generated `__init__` does, read from the field table at each call."""
    store = object.__setattr__ if cls.__record_frozen__ else setattr
    params = [(name, spec) for name, spec in cls.__record_specs__.items() if spec.init]
    if len(args) > len(params):
        raise TypeError(f"{cls.__qualname__}() takes {len(params)} positional arguments")
    given = dict(zip((name for name, _ in params), args, strict=False))
    for name, value in kwargs.items():
        if name in given or all(name != known for known, _ in params):
            raise TypeError(f"{cls.__qualname__}() got an unexpected or repeated argument {name!r}")
        given[name] = value
    for name, spec in cls.__record_specs__.items():
        if name in given:
            value = given[name]
        elif spec.factory is not None:
            value = spec.factory()
        elif spec.default is not _MISSING:
            value = spec.default
        elif spec.init:
            raise TypeError(f"{cls.__qualname__}() missing required argument {name!r}")
        else:
            continue  # set later (by __post_init__ or the owner), as dataclasses leave it
        store(record, name, value)
    if hasattr(cls, "__post_init__"):
        record.__post_init__()


def _generate_init(cls: Any) -> Callable[..., None]:
    """A plain `__init__(self, a, b=<default>, c=<factory>)`, as fast as a dataclass's.

    The text is made of the class's own field names (identifiers from its body, never
    input); defaults and factories are passed in the function's globals."""
    store = "_set(self, {name!r}, {value})" if cls.__record_frozen__ else "self.{name} = {value}"
    scope: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": _MISSING}
    params, body = ["self"], []
    for name, spec in cls.__record_specs__.items():
        scope[f"_d_{name}"], scope[f"_f_{name}"] = spec.default, spec.factory
        if spec.init and spec.factory is not None:
            params.append(f"{name}=_MISSING")
            value = f"_f_{name}() if {name} is _MISSING else {name}"
        elif spec.init:
            params.append(name if spec.default is _MISSING else f"{name}=_d_{name}")
            value = name
        elif spec.factory is not None:
            value = f"_f_{name}()"
        elif spec.default is not _MISSING:
            value = f"_d_{name}"
        else:
            continue  # set later (by __post_init__ or the owner), as dataclasses leave it
        body.append(store.format(name=name, value=value))
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n    " + "\n    ".join(body or ["pass"])
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), scope)
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _rebuild(cls: type[Record], values: dict[str, Any]) -> Record:
    """Unpickle: the fields as they were, without running `__init__` again."""
    record = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(record, name, value)
    return record


class Record(metaclass=_RecordMeta):
    """A value class: subclass it with annotated fields, as a dataclass."""

    __slots__ = ()
    if TYPE_CHECKING:
        __record_specs__: ClassVar[dict[str, _Field]]
        __record_fields__: ClassVar[tuple[str, ...]]
        __record_shown__: ClassVar[tuple[str, ...]]
        __record_key__: ClassVar[Callable[[Any], tuple[Any, ...]]]
        __record_frozen__: ClassVar[bool]

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        key = type(self).__record_key__
        return key(self) == key(other)

    def __hash__(self) -> int:
        return hash(type(self).__record_key__(self))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_shown__)
        return f"{type(self).__qualname__}({shown})"

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` applied (as `dataclasses.replace`: `__init__` runs again)."""
        specs = self.__record_specs__
        values = {name: getattr(self, name) for name, spec in specs.items() if spec.init}
        return type(self)(**{**values, **changes})

    def __reduce__(self) -> tuple[Any, ...]:
        unset = _MISSING  # an `init=False` field not assigned yet stays unassigned
        values = {n: getattr(self, n, unset) for n in self.__record_fields__}
        return _rebuild, (type(self), {n: v for n, v in values.items() if v is not unset})
