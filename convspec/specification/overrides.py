"""Changes to a spec by path (``train.iterations``, ``layers[0].filters``): ``Spec.override``.

The changes are applied to the spec's plain data, which is then validated exactly as a file
is (types, names, shapes), so a bad value gets the message a spec file would get, placed at
the path it was given as rather than at a line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ErrorItem, SpecError
from .load import Locator, render_loc, validate_spec
from .yaml_marks import Loc, YamlProblem, parse_yaml

if TYPE_CHECKING:
    from .model import Spec

_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*")
_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_BUDGET = (("train", "iterations"), ("train", "epochs"))  # setting one drops the other


def parse_path(key: str) -> Loc:
    """``'layers[0].filters'`` -> ``('layers', 0, 'filters')``; ValueError if malformed."""
    if not isinstance(key, str) or not _PATH.fullmatch(key):
        raise ValueError(f"not a setting path: {key!r}")
    return tuple(name if name else int(index) for name, index in _PART.findall(key))


def parse_assignment(text: str) -> tuple[str, Any]:
    """``'layers[0].filters=32'`` -> ``('layers[0].filters', 32)`` (``--set``).

    The key must be a setting path (``parse_path``); the value is read by the spec's own YAML
    reader, so it means what it would in a spec file: ``3e-4`` a float, ``epoch`` a string,
    ``null`` nothing, ``{kind: sgd}`` and ``[3, 5]`` flow collections. ``ValueError`` with one
    sentence otherwise.
    """
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    parse_path(key)
    if not value.strip():
        raise ValueError(f"{key}= needs a value (null clears a setting)")
    try:
        data = parse_yaml(value).data
    except YamlProblem as exc:
        raise ValueError(f"the value of {key} is not valid YAML: "
                         f"{exc.message.removeprefix('invalid YAML: ')}") from None
    return key, data


class _ChangeLocator(Locator):
    """Places a problem at the changed path it concerns (as the user wrote it), else at the
    rendered validation path; there are no lines to point at."""

    def __init__(self, data: Any, keys: Mapping[Loc, str]):
        super().__init__(data)
        self.keys = keys

    def item(self, loc: Loc, message: str, *, key: bool = False) -> ErrorItem:
        path = self._data_path(loc)
        for changed, text in self.keys.items():
            if path == changed or (key and changed[:len(path)] == path):
                return ErrorItem(message, text)
        return ErrorItem(message, render_loc(loc))


def _assign(data: dict[str, Any], path: Loc, value: Any) -> str | None:
    """Set ``path`` in ``data`` (creating missing mappings); the problem, if it cannot be."""
    node: Any = data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(part, int):
            if not isinstance(node, list):
                return f"{render_loc(path[:depth]) or 'the spec'} is not a list"
            if part >= len(node):
                return (f"there is no {render_loc(path[:depth + 1])}: "
                        f"{render_loc(path[:depth])} has {len(node)} entries")
        elif not isinstance(node, dict):
            return f"{render_loc(path[:depth])} is not a mapping"
        elif not last and node.get(part) is None:
            node[part] = {}
        if last:
            node[part] = value
        else:
            node = node[part]
    return None


def override(spec: Spec, changes: Mapping[str, Any], *, source: str = "command line") -> Spec:
    """A new validated spec (shapes included): ``spec`` with ``changes`` applied by path.

    Setting ``train.iterations`` drops ``train.epochs`` and vice versa (giving both is an
    error). Raises a SpecError whose items name the path, with ``source`` as the place.
    """
    data = spec.to_dict()
    keys: dict[Loc, str] = {}
    problems = []
    for key, value in changes.items():
        try:
            path = parse_path(key)
        except ValueError as exc:
            problems.append(ErrorItem(f"{exc}; write keys like train.iterations, "
                                      f"train.optimizer.learning_rate or layers[0].filters"))
            continue
        problem = _assign(data, path, value)
        if problem:
            problems.append(ErrorItem(problem, key))
            continue
        keys[path] = key
        if path in _BUDGET:
            other = _BUDGET[1 - _BUDGET.index(path)]
            if other in keys:
                problems.append(ErrorItem("give either 'iterations' or 'epochs', not both",
                                          key))
            data["train"].pop(other[1], None)
    if problems:
        raise SpecError(problems, source)
    return validate_spec(data, source=source, locator=_ChangeLocator(data, keys))
