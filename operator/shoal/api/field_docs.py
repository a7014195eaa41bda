"""Field descriptions of the API models, read from the docstring under each field.

The models document a field with a string literal below it. Pydantic can read those at
class creation (`use_attribute_docstrings`), but that re-parses every model's source
each time a process imports the API: a third of what `shoal validate` spent before
validating anything. Only the generated references need the text (the CRDs, the editor
schemas, docs/api.md), so they read it here, when they are generated.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from typing import Any

from pydantic import BaseModel

__all__ = ["documented_schema", "field_doc", "field_docs"]


@functools.cache
def _own_docs(cls: type) -> dict[str, str]:
    """Docstrings of the fields a class itself declares, by field name."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen or generated class)
        return {}
    tree = ast.parse(source).body[0]
    if not isinstance(tree, ast.ClassDef):
        return {}
    docs: dict[str, str] = {}
    for field, doc in zip(tree.body, tree.body[1:], strict=False):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)
        ):
            docs[field.target.id] = inspect.cleandoc(doc.value.value)
    return docs


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Docstrings of a model's fields, inherited ones included (the nearest class wins)."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if issubclass(cls, BaseModel) and cls is not BaseModel:
            docs.update(_own_docs(cls))
    return docs


def field_doc(model: type[BaseModel], name: str) -> str:
    """The description of one field: `Field(description=...)` first, else its docstring."""
    info = model.model_fields[name]
    return info.description or field_docs(model).get(name, "")


def _models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model reachable from `model` through its fields, by class name."""
    found: dict[str, type[BaseModel]] = {}
    todo: list[Any] = [model]
    while todo:
        item = todo.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            if item.__name__ in found:
                continue
            found[item.__name__] = item
            todo += [info.annotation for info in item.model_fields.values()]
        todo += list(getattr(item, "__args__", ()) or ())
    return found


def _describe(properties: dict[str, Any], model: type[BaseModel]) -> None:
    docs = field_docs(model)
    for name, info in model.model_fields.items():
        key = info.alias or name
        prop = properties.get(key)
        if prop is not None and name in docs and "description" not in prop:
            # Pydantic sorts a property's keys; so does this, for the same output.
            properties[key] = dict(sorted({**prop, "description": docs[name]}.items()))


def documented_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model.model_json_schema(by_alias=True)`, with each field's docstring as its
    description, as `use_attribute_docstrings` would have put it."""
    schema = model.model_json_schema(by_alias=True)
    models = _models(model)
    _describe(schema.get("properties", {}), model)
    for name, definition in schema.get("$defs", {}).items():
        if name in models:
            _describe(definition.get("properties", {}), models[name])
    return schema
