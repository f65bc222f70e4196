"""YAML 1.2 core-schema scalars for PyYAML, which implements YAML 1.1.

YAML 1.1 reads values in ways a person does not: ``5:5`` is the base-60 number 305, ``032``
the octal number 26, ``0b101`` binary, ``yes``/``no``/``on``/``off``/``y``/``n`` are booleans
and ``2001-12-14`` a date. convspec reads plain (unquoted) scalars by the YAML 1.2 core schema
(https://yaml.org/spec/1.2.2/#1032-tag-resolution) instead:

- null: ``~``, ``null`` (``Null``, ``NULL``) or nothing;
- booleans: ``true`` and ``false`` (``True``, ``TRUE``, ``False``, ``FALSE``) only;
- integers: decimal ``[-+]?[0-9]+`` (``032`` is 32), ``0o17`` octal, ``0x1F`` hexadecimal;
- floats: ``1.5``, ``.5``, ``1.``, ``1e-4``, ``1.5E+3``, ``.inf``, ``-.inf``, ``.nan``;
- everything else is text: ``5:5``, ``0b101``, ``yes``, ``on``, ``2001-12-14``.

One extension, as in Python: ``_`` may group digits between two digits (``1_000``, ``0.000_1``).
Explicit standard tags (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``) read their
value by the same rules, and a value they cannot read is a located error (``!!int abc``);
``!!binary``, ``!!timestamp``, ``!!set``, ``!!omap`` and ``!!pairs`` are refused: a spec holds
none of them. Text with a lone UTF-16 surrogate (``"\\ud800"``) is refused: it has no UTF-8
form. Merge keys (``<<: *anchor``) resolve as YAML defines them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError

TAG = "tag:yaml.org,2002:"
MERGE_TAG = TAG + "merge"
# The longest integer read, in decimal digits: far beyond any value a spec holds (a size has
# at most 10 digits, a seed 19), yet products of a few such numbers stay within Python's limit
# on int -> text conversion (4,300 digits by default). That limit, and the one on text -> int,
# can be changed by any code in the process; this one cannot.
MAX_DIGITS = 1000
_TOO_LONG = 10**MAX_DIGITS

_DIGITS = r"[0-9](?:_?[0-9])*"
_DEC = rf"[-+]?{_DIGITS}"
_NUM = rf"[-+]?(?:\.{_DIGITS}|{_DIGITS}(?:\.(?:{_DIGITS})?)?)(?:[eE][-+]?{_DIGITS})?"
_INFINITY = r"[-+]?\.(?:inf|Inf|INF)"
_NOT_A_NUMBER = r"\.(?:nan|NaN|NAN)"
_DECIMAL, _OCTAL, _HEX = (re.compile(p + r"\Z") for p in (_DEC, "0o[0-7]+", "0x[0-9a-fA-F]+"))
_FLOAT, _INF, _NAN = (re.compile(p + r"\Z") for p in (_NUM, _INFINITY, _NOT_A_NUMBER))
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
         "FALSE": False}
_NULL = re.compile(r"(?:~|null|Null|NULL|)\Z")


class CoreResolver(yaml.resolver.BaseResolver):
    """Tags of plain scalars by the YAML 1.2 core schema, plus ``<<`` merge keys."""


for _tag, _pattern, _first in [
    ("bool", "|".join(_BOOL), "tTfF"),
    ("int", rf"{_DEC}|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    ("float", rf"{_NUM}|{_INFINITY}|{_NOT_A_NUMBER}", "-+0123456789."),
    ("null", "~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("merge", "<<", "<"),
]:
    CoreResolver.add_implicit_resolver(TAG + _tag, re.compile(rf"(?:{_pattern})\Z"), list(_first))


def _refuse(loader: yaml.constructor.SafeConstructor, node: yaml.Node, what: str) -> Any:
    raise ConstructorError(None, None, f"{node.value!r} is not {what}", node.start_mark)


def _decimal(digits: str) -> int:
    """int(digits) in chunks, so no interpreter-wide digit limit applies."""
    value = 0
    for start in range(0, len(digits), 500):
        chunk = digits[start:start + 500]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def construct_int(loader: yaml.constructor.SafeConstructor, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    if _OCTAL.match(text) or _HEX.match(text):
        value = int(text[2:], 8 if text[1] == "o" else 16)  # power-of-two bases: linear time
        long = value >= _TOO_LONG
    elif _DECIMAL.match(text):
        digits = text.lstrip("+-").replace("_", "")
        long = len(digits) > MAX_DIGITS
        value = 0 if long else _decimal(digits)
    else:
        return _refuse(loader, node, "an integer (decimal, 0o octal or 0x hexadecimal)")
    if long:
        raise ConstructorError(None, None, f"{text[:20]}... is longer than any integer convspec "
                               f"reads ({MAX_DIGITS:,} digits)", node.start_mark)
    return -value if text.startswith("-") else value


def construct_float(loader: yaml.constructor.SafeConstructor, node: yaml.Node) -> float:
    text = loader.construct_scalar(node)
    if _NAN.match(text):
        return math.nan
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if not _FLOAT.match(text):
        return _refuse(loader, node, "a number")
    return float(text)  # 1e400 becomes inf: a float field then says what was written


def construct_bool(loader: yaml.constructor.SafeConstructor, node: yaml.Node) -> bool:
    text = loader.construct_scalar(node)
    if text not in _BOOL:
        return _refuse(loader, node, "true or false")
    return _BOOL[text]


def construct_null(loader: yaml.constructor.SafeConstructor, node: yaml.Node) -> None:
    text = loader.construct_scalar(node)
    if not _NULL.match(text):
        _refuse(loader, node, "null")


def refuse_tag(loader: yaml.constructor.SafeConstructor, node: yaml.Node) -> Any:
    name = node.tag.removeprefix(TAG)
    raise ConstructorError(None, None, f"the tag !!{name} is not allowed in a spec: a spec "
                           f"holds only text, numbers, true/false, null, lists and mappings",
                           node.start_mark)


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def construct_str(loader: yaml.constructor.SafeConstructor, node: yaml.Node) -> str:
    text = loader.construct_scalar(node)
    lone = _SURROGATE.search(text)
    if lone:  # "\ud800" escapes a half of a UTF-16 pair: no character, and no UTF-8 for it
        raise ConstructorError(None, None, f"\\u{ord(lone.group()):04x} is half of a UTF-16 "
                               f"pair, not a character", node.start_mark)
    return text


def construct_merge_text(loader: yaml.constructor.SafeConstructor, node: yaml.Node) -> str:
    return loader.construct_scalar(node)  # '<<' as a value, not a key, is text


CONSTRUCTORS = {
    TAG + "str": construct_str,
    MERGE_TAG: construct_merge_text,
    TAG + "int": construct_int,
    TAG + "float": construct_float,
    TAG + "bool": construct_bool,
    TAG + "null": construct_null,
    **{TAG + name: refuse_tag for name in ("binary", "timestamp", "set", "omap", "pairs")},
}
"""Constructors that replace SafeConstructor's YAML 1.1 ones, by tag."""
