"""Safe YAML loading that remembers where every value came from.

PyYAML's safe loader already refuses Python tags; on top of it this rejects duplicate keys,
reads ``1e-4`` as a float (YAML 1.1 would make it a string), and records the line and column
of every key and value so validation errors can point at ``file:line:col``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Loc = tuple[Any, ...]
Marks = dict[Loc, tuple[int, int]]  # path -> (line, column), 1-based

_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class YamlProblem(Exception):
    """A YAML-level problem (syntax, tag, duplicate key) with its position."""

    def __init__(self, message: str, line: int | None, column: int | None):
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise YamlProblem("invalid YAML: a mapping key must be a plain value, not a list "
                                  "or mapping", key_node.start_mark.line + 1,
                                  key_node.start_mark.column + 1) from None
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise YamlProblem(f"duplicate key {key!r} (first given on line {first})",
                                  key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _collect(node: yaml.Node, loc: Loc, marks: Marks, key_marks: Marks,
             parents: frozenset[int] = frozenset()) -> None:
    if id(node) in parents:  # an alias to one of its own ancestors: &a [*a]
        raise YamlProblem("invalid YAML: a recursive alias (a value that contains itself)",
                          *_mark(node))
    marks[loc] = _mark(node)
    parents = parents | {id(node)}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = (*loc, key_node.value)
                key_marks[child] = _mark(key_node)
                _collect(value_node, child, marks, key_marks, parents)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect(item, (*loc, i), marks, key_marks, parents)


def parse_yaml(text: str) -> tuple[Any, Marks, Marks]:
    """(data, value marks, key marks) of one YAML document; YamlProblem on bad input."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a control character such as NUL
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else exc.character
        raise YamlProblem(f"invalid YAML: unacceptable character {char}: {exc.reason}",
                          line, column) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlProblem("the file is empty; a spec is a mapping with name, input, "
                              "classes and layers", 1, 1)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if "could not determine a constructor" in problem:
            problem += " (only plain YAML is allowed: no tags like !!python/...)"
        raise YamlProblem(f"invalid YAML: {problem}", mark.line + 1 if mark else None,
                          mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}", None, None) from None
    except RecursionError:
        mark = loader.get_mark()
        raise YamlProblem("invalid YAML: nested too deeply", mark.line + 1,
                          mark.column + 1) from None
    finally:
        loader.dispose()
    marks: Marks = {}
    key_marks: Marks = {}
    try:
        _collect(node, (), marks, key_marks)
    except RecursionError:
        raise YamlProblem("invalid YAML: nested too deeply", 1, 1) from None
    return data, marks, key_marks
