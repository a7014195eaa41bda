"""A read-only view of a schema-checked document that reads like the API models.

`shoal validate`'s fast check runs the one semantic checker (`core/validation`) on a
document without building pydantic models: this view answers `node.depends_on`,
`spec.defaults.env`, `node.run_policy` ... with the models' attribute names, wire names,
defaults, nested models, enums (those of `api/enums.py`) and float coercion, from the
table generated beside the schema check (`api/_generated_check.FIELDS`, `make crds`).
It is only correct for a document that passed that schema check.
"""

from __future__ import annotations

from shoal.api import _generated_check, enums

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` (issue 17)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ModelView", "view_of"]

if TYPE_CHECKING:
    Field = tuple[str, str, str | None, Any]
    """(wire name, shape, nested model or enum, default): see `check_codegen.field_table`."""
FIELDS: dict[str, dict[str, Field]] = _generated_check.FIELDS  # type: ignore[assignment]
_FRESH = {"NEW:list": list, "NEW:dict": dict}


class ModelView:
    """One model's worth of a document: attributes computed once, on first read."""

    __slots__ = ("_cache", "_data", "_model")

    def __init__(self, model: str, data: dict[str, Any]) -> None:
        self._model = model
        self._data = data
        self._cache: dict[str, Any] = {}

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        cache = self._cache
        if attr in cache:
            return cache[attr]
        field = FIELDS[self._model].get(attr)
        if field is None:
            raise AttributeError(f"{self._model} has no field {attr!r}")
        alias, shape, target, default = field
        if alias in self._data:
            value = _convert(self._data[alias], shape, target)
        elif default == "NEW:model":
            value = ModelView(str(target), {})
        elif default in _FRESH:
            value = _FRESH[default]()
        else:
            value = _convert(default, shape, target)
        cache[attr] = value
        return value

    def no_retry(self) -> ModelView:
        """The default retry policy (`core/defaults` asks a spec for it): no retry."""
        return ModelView("RetryPolicy", {})

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """Attribute names to values, as pydantic's `model_dump` gives them for a model
        of plain fields (`WithSequence`, the only one `core/validation` dumps)."""
        dumped = {name: getattr(self, name) for name in FIELDS[self._model]}
        return {k: v for k, v in dumped.items() if v is not None or not exclude_none}

    def __repr__(self) -> str:
        return f"ModelView({self._model}, {self._data!r})"


def _convert(value: Any, shape: str, target: str | None) -> Any:
    if value is None:
        return None
    if shape == "model":
        return ModelView(str(target), value)
    if shape == "list":
        return [ModelView(str(target), item) for item in value]
    if shape == "dict":
        return {key: ModelView(str(target), item) for key, item in value.items()}
    if shape == "enum":
        return getattr(enums, str(target))(value)
    if shape == "float" and not isinstance(value, bool):
        return float(value)
    if shape == "int" and isinstance(value, float):
        return int(value)
    return value


def view_of(document: dict[str, Any]) -> ModelView:
    """A Workflow document (schema-checked) as a view of `api.workflow.Workflow`."""
    return ModelView("Workflow", document)
