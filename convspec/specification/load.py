"""Load and validate a spec in passes, all reporting through ``SpecError``.

1. YAML (safe, no duplicate keys) with the position of every node;
2. pydantic types and ranges (every error at once), then, in ``Spec``'s own validator, block
   expansion, the cross-field checks (names) and the graph's rules;
3. shape inference, located at the first layer that cannot be applied (where it was written:
   a block's layer is located in the block, with the instance named).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ErrorItem, SpecError
from ..shapes import ShapeError, ShapeTable, infer_shapes
from .model import Spec
from .yaml_marks import Loc, Marks, YamlProblem, parse_yaml


def render_loc(loc: Loc) -> str:
    """('layers', 3, 'conv2d', 'filters') -> 'layers[3].conv2d.filters'; a key with
    unprintable characters is written as its repr (a message stays one line)."""
    out = ""
    for part in loc:
        text = str(part) if str(part).isprintable() else repr(part)
        out += f"[{text}]" if isinstance(part, int) else (f".{text}" if out else text)
    return out


class Locator:
    """Maps a validation path to the line and column of the YAML node it came from."""

    def __init__(self, data: Any = None, marks: Marks | None = None,
                 key_marks: Marks | None = None):
        self.data, self.marks, self.key_marks = data, marks or {}, key_marks or {}

    def _data_path(self, loc: Loc) -> Loc:
        """Drop discriminator tags (``conv2d`` in layers[3].conv2d.filters) absent from data
        (or, like ``block`` in layers[3].block.filters, followed by a key of the mapping)."""
        path: list[Any] = []
        node = self.data
        for i, part in enumerate(loc):
            after = loc[i + 1] if i + 1 < len(loc) else None
            if isinstance(node, dict) and node.get("kind") == part and (
                    part not in node or (after is not None and after in node)):
                continue
            path.append(part)
            try:
                node = node[part]  # type: ignore[index]
            except (KeyError, IndexError, TypeError):
                node = None
        return tuple(path)

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int | None, int | None]:
        path = self._data_path(loc)
        if key and path in self.key_marks:
            return self.key_marks[path]
        while path and path not in self.marks:
            path = path[:-1]
        return self.marks.get(path, (None, None))

    def item(self, loc: Loc, message: str, *, key: bool = False) -> ErrorItem:
        line, column = self.position(loc, key=key)
        return ErrorItem(message, render_loc(loc), line, column)


def _pydantic_items(exc: ValidationError, locator: Locator) -> list[ErrorItem]:
    from .messages import describe  # only a spec with errors needs it (and difflib)

    items = []
    for error in exc.errors(include_url=False):
        key = error["type"] == "extra_forbidden"
        items.append(locator.item(tuple(error["loc"]), describe(error, Spec), key=key))
    return items


def validate_spec(data: Any, *, source: str | None = None, locator: Locator | None = None,
                  with_shapes: bool = True) -> Spec:
    """Validate plain data (from YAML or code) into a Spec with resolved layer names."""
    locator = locator or Locator(data)
    if not isinstance(data, dict):
        line, column = locator.position(())  # where the document starts, after any comments
        raise SpecError([ErrorItem("a spec must be a mapping with name, input, classes and "
                                   "layers", "", line or 1, column or 1)], source)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        items = sorted(_pydantic_items(exc, locator), key=lambda i: (i.line or 0, i.column or 0))
        raise SpecError(items, source) from None
    if with_shapes:
        shapes(spec, source=source, locator=locator)
    return spec


def shapes(spec: Spec, *, source: str | None = None,
           locator: Locator | None = None) -> ShapeTable:
    """Shape table of a validated spec (``spec.table``); a located SpecError (with partial
    rows) on failure."""
    try:
        return infer_shapes(spec)
    except ShapeError as exc:
        layer = spec.layers[exc.index]
        loc, message = spec.origins[exc.index].locate(("layers", exc.index, layer.kind),
                                                      exc.message)
        line, column = (locator or Locator()).position(loc)
        item = ErrorItem(message, f"{render_loc(loc)} ({layer.name})", line, column)
        error = SpecError([item], source)
        error.partial_rows = exc.rows  # type: ignore[attr-defined]
        raise error from None


def parse_spec_text(text: str, source: str | None = None) -> tuple[Any, Locator]:
    try:
        data, marks, key_marks = parse_yaml(text)
    except YamlProblem as exc:
        raise SpecError([ErrorItem(exc.message, "", exc.line, exc.column)], source) from None
    return data, Locator(data, marks, key_marks)


def read_spec_text(path: str | os.PathLike[str]) -> str:
    """The text of the spec file at ``path``; a SpecError naming the file if unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([ErrorItem("no such file")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([ErrorItem(f"cannot read the file: {exc}")], str(path)) from None


def load_spec(path: str | os.PathLike[str], *, with_shapes: bool = True) -> Spec:
    """Read, validate and shape-check the YAML spec at ``path``."""
    return loads_spec(read_spec_text(path), source=str(path), with_shapes=with_shapes)


def loads_spec(text: str, *, source: str | None = "<string>", with_shapes: bool = True) -> Spec:
    """Validate a spec given as YAML text."""
    data, locator = parse_spec_text(text, source)
    return validate_spec(data, source=source, locator=locator, with_shapes=with_shapes)
