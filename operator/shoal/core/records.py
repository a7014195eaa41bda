"""Frozen value classes for what `shoal validate` builds, without `dataclasses`.

`import dataclasses` imports `inspect` (and with it `ast`, `dis`, `tokenize`), and each
decorated class then costs about half a millisecond to generate: together, a tenth of the
validator's start-up. The few records the validator builds (compiled workflows, nodes,
expressions, problems) derive from `Record` instead: their fields are their `__slots__`,
assigned once in an ordinary `__init__`, and `Record` gives what the dataclasses gave them
(immutability, equality and hashing over the compared fields, a repr, `replace`, pickling).
`shoal run`'s records (decisions, events, protocol messages) are declared like
dataclasses on `shoal_worker.records.Record` instead, which the worker can import too.
"""

from __future__ import annotations

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` its import
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self

__all__ = ["FrozenRecordError", "Record"]


class FrozenRecordError(AttributeError):
    """A field of a record was assigned after construction."""


class Record:
    """A frozen record whose fields are its `__slots__`, in its `__init__`'s order."""

    __slots__ = ()
    compared: ClassVar[tuple[str, ...] | None] = None
    """The fields equality and hashing look at; None means every field."""

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """Every field, in order (a subclass's `__slots__`)."""
        return cls.__slots__

    def _set(self, **values: Any) -> None:
        """Assign the fields once, from `__init__`."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.compared or self.fields())

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.fields())
        return f"{type(self).__name__}({shown})"

    def values(self) -> dict[str, Any]:
        """Every field by name."""
        return {name: getattr(self, name) for name in self.fields()}

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` applied (as `dataclasses.replace`)."""
        return type(self)(**{**self.values(), **changes})

    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]:
        return type(self), tuple(getattr(self, name) for name in self.fields())
