"""Load and validate a spec in passes, all reporting through ``SpecError``.

1. YAML (safe, YAML 1.2 scalars, bounded, no duplicate keys; see ``yaml_marks``) with the
   position of every node;
2. pydantic types and ranges (every error at once), then, in ``Spec``'s own validator, block
   expansion, the cross-field checks (names) and the graph's rules;
3. shape inference, located at the first layer that cannot be applied (where it was written:
   a block's layer is located in the block, with the instance named).
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ErrorItem, SpecError
from ..shapes import ShapeError, ShapeTable, infer_shapes
from .model import Spec
from .yaml_marks import Loc, Parsed, YamlProblem, parse_yaml


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

    def __init__(self, data: Any = None, parsed: Parsed | None = None):
        self.data, self.parsed = data, parsed

    def _data_path(self, loc: Loc) -> Loc:
        """Drop discriminator tags (``conv2d`` in layers[3].conv2d.filters, ``block`` in
        layers[3].block.filters), which are not keys of the data.

        Pydantic puts the tag of a discriminated union right after the union's own location,
        so the first part that equals a mapping's ``kind`` is the tag, even when a field has
        the same name: the optimizer ``{kind: momentum, momentum: 0.9}`` reports
        ``optimizer.momentum.momentum``, which is the data path ``optimizer.momentum``. A path
        that ends at such a key (``layers[1].block``, a block instance's ``block:``) is the key.
        """
        path: list[Any] = []
        node = self.data
        tagged: Any = None  # the mapping whose tag was dropped
        for i, part in enumerate(loc):
            last = i == len(loc) - 1  # a key named like the kind, at the end: the key itself
            if (isinstance(node, dict) and node.get("kind") == part and tagged is not node
                    and not (last and part in node)):
                tagged = node
                continue
            path.append(part)
            try:
                node = node[part]  # type: ignore[index]
            except (KeyError, IndexError, TypeError):
                node = None
        return tuple(path)

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of ``loc`` in the file (its key's with ``key``); (None, None) for data
        that did not come from a file."""
        if self.parsed is None:
            return None, None
        return self.parsed.position(self._data_path(loc), key=key) or (None, None)

    def written(self, loc: Loc) -> str | None:
        """The text of the number, boolean or null at ``loc`` as the file spells it."""
        return self.parsed.written(self._data_path(loc)) if self.parsed else None

    def item(self, loc: Loc, message: str, *, key: bool = False) -> ErrorItem:
        line, column = self.position(loc, key=key)
        return ErrorItem(message, render_loc(loc), line, column)


def _pydantic_items(exc: ValidationError, locator: Locator) -> list[ErrorItem]:
    from .messages import describe  # only a spec with errors needs it (and difflib)

    items = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        message = describe(error, Spec, written=locator.written(loc))
        items.append(locator.item(loc, message, key=error["type"] == "extra_forbidden"))
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
        parsed = parse_yaml(text)
    except YamlProblem as exc:
        raise SpecError([ErrorItem(exc.message, "", exc.line, exc.column)], source) from None
    return parsed.data, Locator(parsed.data, parsed)


def read_spec_text(path: str | os.PathLike[str]) -> str:
    """The text of the UTF-8 spec file at ``path`` (a byte-order mark is dropped); a SpecError
    naming the file if it is unreadable, with the line and column of a byte that is not UTF-8."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError([ErrorItem("no such file")], str(path)) from None
    except OSError as exc:
        raise SpecError([ErrorItem(f"cannot read the file: {exc}")], str(path)) from None
    return decode_spec(raw, str(path))


_OTHER_ENCODINGS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32",
                    b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def decode_spec(raw: bytes, source: str | None = None) -> str:
    """UTF-8 bytes as text; a SpecError at the line and column of the first bad byte."""
    for bom, encoding in _OTHER_ENCODINGS.items():
        if raw.startswith(bom):
            raise SpecError([ErrorItem(f"the file is {encoding} text; convspec reads UTF-8: "
                                       f"save it as UTF-8", "", 1, 1)], source)
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        start = bom + exc.start
    line_start = raw.rfind(b"\n", 0, start) + 1
    line = raw.count(b"\n", 0, start) + 1
    column = len(raw[line_start:start].decode("utf-8-sig", errors="replace")) + 1
    raise SpecError([ErrorItem(f"the file is not UTF-8 text: byte 0x{raw[start]:02x} cannot be "
                               f"read here; save the file as UTF-8", "", line, column)],
                    source) from None


def load_spec(path: str | os.PathLike[str], *, with_shapes: bool = True) -> Spec:
    """Read, validate and shape-check the YAML spec at ``path``."""
    return loads_spec(read_spec_text(path), source=str(path), with_shapes=with_shapes)


def loads_spec(text: str, *, source: str | None = "<string>", with_shapes: bool = True) -> Spec:
    """Validate a spec given as YAML text."""
    data, locator = parse_spec_text(text, source)
    return validate_spec(data, source=source, locator=locator, with_shapes=with_shapes)
