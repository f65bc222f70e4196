"""Turn pydantic's error dicts into short sentences a person can act on.

Pydantic says *what* failed; this adds what is allowed, the value given, and a
"did you mean" for misspelt keys and kinds.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Literal, Union

from pydantic import BaseModel

from ..layers import LAYER_KINDS


def suggest(word: str, allowed: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(word), list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _given(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list"}.get(type(value))
    return kind or repr(value)


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Annotated / Optional / Union / list."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _unwrap(a)]
    return [annotation]


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    if field is None or typing.get_origin(field.annotation) is not Literal:
        return None
    return typing.get_args(field.annotation)[0]


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that validates the value at ``loc`` (tags included)."""
    models = models_at(root, loc)
    return models[0] if len(models) == 1 else None


def models_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[type[BaseModel]]:
    """Every pydantic model class that may validate the value at ``loc`` (a union's members)."""
    candidates: list[Any] = [root]
    for part in loc:
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        tagged = [m for m in models if _tag_of(m) == part]
        if len(models) > 1 and tagged:
            candidates = tagged
            continue
        if isinstance(part, int):
            candidates = [a for c in candidates if typing.get_origin(c) is list
                          for a in _unwrap(typing.get_args(c)[0])]
            continue
        nxt = []
        for m in models:
            if part in m.model_fields:
                nxt += _unwrap(m.model_fields[part].annotation)
        candidates = nxt
    return [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]


def describe(error: dict[str, Any], root: type[BaseModel]) -> str:
    """One sentence for one pydantic error."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    loc = error["loc"]
    if kind == "extra_forbidden":
        model = model_at(root, loc[:-1])
        allowed = sorted(model.model_fields) if model else []
        allowed = [a for a in allowed if a != "kind"]
        return (f"unknown key {loc[-1]!r}{suggest(loc[-1], allowed) or '.'}"
                + (f" Allowed: {', '.join(allowed)}" if allowed else ""))
    if kind == "missing":
        model = model_at(root, loc[:-1])
        required = [n for n, f in model.model_fields.items() if f.is_required() and n != "kind"] \
            if model else []
        needs = f" ({', '.join(required)} are required here)" if len(required) > 1 else ""
        return f"required key {loc[-1]!r} is missing{needs}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        if not tags:  # pydantic gives no tags when 'kind' is absent: list the union's members
            tags = [t for t in map(_tag_of, models_at(root, loc)) if t is not None]
        if kind == "union_tag_not_found":
            return f"missing 'kind'; choose one of: {', '.join(tags)}"
        tag = ctx.get("tag")
        what = "layer kind" if set(tags) <= {*LAYER_KINDS, "block"} else "kind"
        return f"unknown {what} {tag!r}{suggest(tag, tags) or '.'} Allowed: {', '.join(tags)}"
    if kind == "literal_error":
        allowed = [a.strip(" '") for a in str(ctx.get("expected", "")).replace(" or ", ",")
                   .split(",") if a.strip()]
        return (f"must be one of {', '.join(repr(a) for a in allowed)}, got {_given(value)}"
                f"{suggest(value, allowed) if isinstance(value, str) else ''}")
    if kind == "greater_than":
        gt = ctx.get("gt")  # 0 on integer fields, 0.0 on number fields
        if gt == 0 and isinstance(gt, int) and isinstance(value, int):
            return f"must be a positive integer, got {value}"
        return f"must be greater than {ctx.get('gt')}, got {value}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {value}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}, got {value}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {value}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer, got {_given(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {_given(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {_given(value)}"
    if kind in ("string_type",):
        return f"must be a string, got {_given(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping of keys to values, got {_given(value)}"
    if kind == "list_type":
        return f"must be a list, got {_given(value)}"
    if kind == "too_long":
        return f"must list at most {ctx.get('max_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "too_short":
        what = "layer" if loc == ("layers",) else "item"
        return f"must list at least {ctx.get('min_length')} {what}(s)"
    if kind == "string_pattern_mismatch":
        if len(loc) > 1 and (loc[-1] == "name" or "inputs" in loc):
            return (f"must start with a letter or '_' and contain only letters, digits and '_', "
                    f"got {value!r}")
        return f"must match {ctx.get('pattern')}, got {value!r}"
    if kind in ("pair", "padding"):  # our own validators already wrote the sentence
        return error["msg"]
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_given(value)}"
