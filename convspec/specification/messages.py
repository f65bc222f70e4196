"""Turn pydantic's error dicts into short sentences a person can act on.

Pydantic says *what* failed; this adds what is allowed, the value given, and a
"did you mean" for misspelt keys and kinds. Where the loader kept the text of a number, boolean
or null as written (``written``), a message can say what the file says (``1.0e+400 is too large
for a float`` rather than ``got inf``) and how to write the value (quote ``true`` to make it
text; ``5:5`` is text in YAML 1.2, not the base-60 number 305).
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from typing import Any, Literal, Union

from pydantic import BaseModel

from ..layers import LAYER_KINDS
from ..limits import digits, number_text


def suggest(word: str, allowed: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(word), list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _given(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list"}.get(type(value))
    if kind:
        return kind
    if isinstance(value, int) and not isinstance(value, bool):
        return number_text(value)
    if isinstance(value, str) and len(value) > 60:
        return f"{value[:40]!r}... ({len(value):,} characters)"
    return repr(value)


def _limit(bound: Any) -> str:
    return f"{bound:,}" if isinstance(bound, int) and abs(bound) >= 10_000 else str(bound)


_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?\Z")
_YAML11_BOOLS = frozenset({"yes", "no", "on", "off", "y", "n"})
_NUMBER_ERRORS = frozenset({"int_type", "int_parsing", "int_from_float", "float_type",
                            "float_parsing", "pair", "padding"})


def _yaml11_hint(value: Any, kind: str) -> str:
    """How to write a value YAML 1.1 would have read as a number or a boolean, else ''."""
    if not isinstance(value, str):
        return ""
    if kind in ("bool_type", "bool_parsing") and value.lower() in _YAML11_BOOLS:
        return f"; write true or false ({value!r} is text in YAML 1.2, which convspec reads)"
    if kind not in _NUMBER_ERRORS:
        return ""
    if _BASE60.match(value):
        parts = value.lstrip("+-").split(":")
        if "." in parts[-1] or "_" in value or len(parts[0]) > 20:
            return f"; {value if len(value) <= 60 else _given(value)} is text, not a number"
        sixty = 0
        for part in parts:
            sixty = sixty * 60 + int(part)
        hint = f"; {value} is text, not a number (YAML 1.1 read it as the base-60 number {sixty})"
        if kind in ("pair", "padding") and len(parts) == 2 and value[0] not in "+-":
            hint += f": write [{int(parts[0])}, {int(parts[1])}] for a height and a width"
        return hint
    if re.match(r"[-+]?0b[01_]+\Z", value):
        return f"; {value} is text (YAML 1.2 has no binary numbers): write it in decimal"
    return ""


def _not_finite(value: Any, written: str | None) -> str:
    """'must be a finite number' and what was given: inf, nan, or a number beyond float range."""
    if written is not None and isinstance(value, float) and math.isinf(value) and \
            "inf" not in written.lower():
        return (f"must be a finite number; {written} is too large for a float (the largest is "
                f"about 1.8e+308)")
    if isinstance(value, int):
        return (f"must be a finite number; {_given(value)} is too large for a float "
                f"(the largest is about 1.8e+308)")
    shown = written if written is not None else repr(value)
    return f"must be a finite number, got {shown}"


def _too_small(value: Any, written: str | None) -> str:
    """A note when a nonzero number as written became 0.0 (below the smallest float)."""
    mantissa = re.split("[eE]", written or "")[0]
    if value == 0 and isinstance(value, float) and re.search("[1-9]", mantissa):
        return f" ({written} is too small for a float: it reads as 0.0)"
    return ""


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


def describe(error: dict[str, Any], root: type[BaseModel], written: str | None = None) -> str:
    """One sentence for one pydantic error; ``written``: the value's text in the file, if known
    (numbers, booleans and nulls; see ``yaml_marks.Parsed.written``)."""
    message = _sentence(error, root, written)
    if len(message) > 300:  # a value repeated by aliases, written out by a validator
        message = f"{message[:240]}... ({len(message):,} characters)"
    if written == "":  # YAML reads a missing value as null
        return f"{message} (the value is empty)"
    return message + _yaml11_hint(error.get("input"), error["type"])


def _sentence(error: dict[str, Any], root: type[BaseModel], written: str | None) -> str:
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
            return f"must be a positive integer, got {_given(value)}"
        return f"must be greater than {gt}, got {_given(value)}{_too_small(value, written)}"
    if kind == "greater_than_equal":
        return f"must be at least {_limit(ctx.get('ge'))}, got {_given(value)}"
    if kind == "less_than":
        return f"must be less than {_limit(ctx.get('lt'))}, got {_given(value)}"
    if kind == "less_than_equal":
        return f"must be at most {_limit(ctx.get('le'))}, got {_given(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer, got {_given(value)}"
    if kind == "finite_number":
        return _not_finite(value, written)
    if kind in ("float_type", "float_parsing"):
        if isinstance(value, int) and not isinstance(value, bool) and digits(value) > 308:
            return _not_finite(value, written)
        return f"must be a number, got {_given(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {_given(value)}"
    if kind in ("string_type",):
        if written:  # a number, boolean or null as written: quoted, it would be text
            return (f"must be a string, got {written}; put it in quotes ('{written}') if it is "
                    f"meant as text")
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
