"""Every number field of the spec language is bounded: floats finite, integers at most a size.

The fields are found by walking every model reachable from ``Spec``, so a field added later is
checked too. Each number field is validated on its own (its annotation with its constraints):
an infinite or NaN float and an integer beyond ``MAX_SIZE`` (``MAX_SEED`` for seeds) must fail.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from convspec.specification import Spec
from convspec.specification.types import MAX_SEED, MAX_SIZE


def _types_in(annotation: Any) -> set[type]:
    """Every concrete type inside an annotation (Annotated, unions, tuples, lists)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _types_in(args[0])
    if origin in (typing.Union, types.UnionType, tuple, list) or args:
        return {t for a in args if a is not Ellipsis for t in _types_in(a)}
    return {annotation} if isinstance(annotation, type) else set()


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.append(model)
        for field in model.model_fields.values():
            todo += [t for t in _types_in(field.annotation) if issubclass(t, BaseModel)]
    return seen


FIELDS = [(model, name) for model in _models(Spec) for name in model.model_fields]
FLOATS = [f for f in FIELDS if float in _types_in(f[0].model_fields[f[1]].annotation)]
INTS = [f for f in FIELDS if int in _types_in(f[0].model_fields[f[1]].annotation)]


def _param(model: type[BaseModel], name: str) -> Any:
    return pytest.param(model, name, id=f"{model.__name__}.{name}")


def _shaped(model: type[BaseModel], name: str, value: Any) -> Any:
    """``value`` as the field takes it: itself, or a one-item list for a list of numbers."""
    return [value] if typing.get_origin(model.model_fields[name].annotation) is list else value


def _adapter(model: type[BaseModel], name: str) -> TypeAdapter:
    return TypeAdapter(model.model_fields[name].rebuild_annotation())


def test_the_walk_finds_the_number_fields():
    names = {f"{m.__name__}.{n}" for m, n in FLOATS + INTS}
    assert {"Adam.learning_rate", "Constant.value", "TruncatedNormal.mean", "Train.seed",
            "Train.batch_size", "Input.height", "Spec.classes"} <= names
    assert len(FLOATS) >= 12 and len(INTS) >= 14


@pytest.mark.parametrize("model, name", [_param(*f) for f in FLOATS])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_every_float_field_is_finite(model, name, value):
    with pytest.raises(ValidationError) as info:
        _adapter(model, name).validate_python(_shaped(model, name, value), strict=True)
    assert {e["type"] for e in info.value.errors()} == {"finite_number"}


@pytest.mark.parametrize("model, name", [_param(*f) for f in INTS])
def test_every_integer_field_is_bounded(model, name):
    bound = MAX_SEED if name == "seed" else MAX_SIZE
    adapter = _adapter(model, name)
    for value in (bound + 1, 10**400):
        with pytest.raises(ValidationError):
            adapter.validate_python(value, strict=True)
