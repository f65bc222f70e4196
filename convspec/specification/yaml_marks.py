"""Safe, bounded YAML loading that remembers where every value came from.

On top of PyYAML's safe loader (no Python tags), a spec is read as follows; every refusal is a
``YamlProblem`` with the line and column of the node at fault:

- scalars by the YAML 1.2 core schema (``yaml_core``): ``032`` is 32, ``5:5`` and ``yes`` are
  text, only ``true``/``false`` are booleans; ``1e-4`` is a float;
- one document per file; no duplicate keys; every key a name (text), never a list, a number,
  a boolean or null;
- merge keys (``<<: *base``, ``<<: [*a, *b]``) as YAML defines them: keys written in the
  mapping win, then earlier merged mappings over later ones; merged values keep the position
  of the text they came from;
- tabs separate tokens within a line (YAML 1.2), but never indent;
- bounded work and memory, whatever the interpreter's recursion limit: at most ``MAX_DEPTH``
  levels of nesting and ``MAX_NODES`` values once every alias is expanded (counted while
  composing, in time linear in the file, so "billion laughs" files are refused at the alias
  that crosses the limit before anything is expanded); an alias inside its own anchor is refused;
- the line and column of every key and value, and the text of every scalar that is not text
  (so a message can say ``1.0e+400`` rather than ``inf``), looked up along one path on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.scanner import Scanner

from .yaml_core import CONSTRUCTORS, MERGE_TAG, TAG, CoreResolver

Loc = tuple[Any, ...]  # a path into the data: keys and list indices

MAX_DEPTH = 100
"""Deepest nesting of lists and mappings accepted (a spec needs about 6)."""
MAX_NODES = 100_000
"""Most keys and values in a document with every alias expanded (the tutorial spec has 142)."""

_TOO_DEEP = f"invalid YAML: nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"
_WRITTEN_TAGS = frozenset(TAG + t for t in ("int", "float", "bool", "null"))


class YamlProblem(Exception):
    """A YAML-level problem (syntax, tag, duplicate key, size) with its position."""

    def __init__(self, message: str, line: int | None, column: int | None):
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def _at(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _BoundedScanner(Scanner):
    """Refuses flow nesting beyond ``MAX_DEPTH`` as the scanner meets it.

    The scanner runs ahead of the composer (up to 1,024 characters while a key is possible)
    and its work per token grows with the flow depth, so a line of 3,000 brackets would cost a
    second before the composer saw the depth. Flow levels plus enclosing block collections
    never exceed the depth the composer counts, so this refuses nothing the composer accepts.
    """

    def scan_to_next_token(self) -> None:
        """Also skip tabs between tokens within a line, as YAML 1.2 allows (``key:\tvalue``,
        a tab before a comment); a tab that indents, or follows ``-`` or ``?``, stays an error."""
        super().scan_to_next_token()
        while self.peek() == "\t":
            before = self.buffer[self.pointer - self.column:self.pointer].rstrip(" \t")
            if not before or before[-1] in "-?":
                return
            while self.peek() in " \t":
                self.forward()
            super().scan_to_next_token()

    def scan_yaml_directive_number(self, start_mark: yaml.Mark) -> int:
        """A number of ``%YAML 1.2``, refused when longer than any version (PyYAML would
        convert thousands of digits with int(), past Python's limit)."""
        length = 0
        while "0" <= self.peek(length) <= "9":
            length += 1
        if length > 9:
            raise YamlProblem(f"invalid YAML: a %YAML version number of {length:,} digits; "
                              f"convspec reads YAML 1.2", *_at(self.get_mark()))
        return super().scan_yaml_directive_number(start_mark)

    def fetch_flow_collection_start(self, TokenClass: type) -> None:  # noqa: N803 (PyYAML's)
        if self.flow_level + 1 + len(self.indents) > MAX_DEPTH:
            raise YamlProblem(_TOO_DEEP, *_at(self.get_mark()))
        super().fetch_flow_collection_start(TokenClass)


class _BoundedComposer(Composer):
    """Counts depth and expanded size while composing; a node's size is known when it is done.

    The size of a node with every alias expanded is the number of nodes composed inside it plus
    the size of every alias target met there, so one counter gives every size; an alias whose
    target has no size yet points into a node still being composed: a recursive alias.
    """

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._count = 0
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
        # id(mapping) -> its pairs as written, before merge keys are resolved
        self.written_pairs: dict[int, list[tuple[yaml.Node, yaml.Node]]] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.anchors:
                self._expand(event, self.anchors[event.anchor])
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlProblem(_TOO_DEEP, *_at(event.start_mark))
        start = self._count
        self._count += 1
        if self._count > MAX_NODES:
            raise YamlProblem(f"invalid YAML: the document holds more than {MAX_NODES:,} keys "
                              f"and values; a spec needs a few hundred", *_at(event.start_mark))
        node = super().compose_node(parent, index)
        self._depth -= 1
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
            self.written_pairs[id(node)] = [(k, v) for k, v in node.value if k.tag != MERGE_TAG]
        height = 1 + max((self._sizes[id(c)][1] for c in children), default=0)
        self._sizes[id(node)] = (self._count - start, height)
        if isinstance(node, yaml.MappingNode):
            _merge(node)
        return node

    def _expand(self, event: yaml.AliasEvent, target: yaml.Node) -> None:
        where = _at(event.start_mark)
        if id(target) not in self._sizes:
            line = target.start_mark.line + 1
            raise YamlProblem(f"invalid YAML: a recursive alias: *{event.anchor} is inside its "
                              f"own anchor &{event.anchor} (line {line}), so the value would "
                              f"contain itself", *where)
        size, height = self._sizes[id(target)]
        self._count += size
        if self._count > MAX_NODES:
            raise YamlProblem(f"invalid YAML: the alias *{event.anchor} expands to {size:,} keys "
                              f"and values, taking the document past {MAX_NODES:,} (a spec "
                              f"needs a few hundred); write the values out or use fewer "
                              f"aliases", *where)
        if self._depth + height > MAX_DEPTH:
            raise YamlProblem(f"invalid YAML: nested too deeply through the alias "
                              f"*{event.anchor} (more than {MAX_DEPTH} levels of lists and "
                              f"mappings)", *where)


def _merge(node: yaml.MappingNode) -> None:
    """Resolve the merge keys of a mapping whose own sources are resolved already.

    YAML's merge key (https://yaml.org/type/merge.html): keys written in the mapping win over
    merged ones, and of a list of merged mappings the earlier win over the later. The merged
    pairs keep their nodes, so their values keep the position of the text they came from.
    """
    sources: list[yaml.MappingNode] = []
    for key, value in node.value:
        if key.tag != MERGE_TAG:
            continue
        items = value.value if isinstance(value, yaml.SequenceNode) else [value]
        for item in items:
            if not isinstance(item, yaml.MappingNode):
                raise YamlProblem(f"invalid YAML: expected a mapping or list of mappings for "
                                  f"merging, but found a {item.id}", *_at(item.start_mark))
        sources += items
    if not sources:
        return
    pairs: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
    for source in reversed(sources):
        pairs.update((_identity(k), (k, v)) for k, v in source.value)
    pairs.update((_identity(k), (k, v)) for k, v in node.value if k.tag != MERGE_TAG)
    node.value = list(pairs.values())


def _identity(key: yaml.Node) -> Any:
    return (key.tag, key.value) if isinstance(key, yaml.ScalarNode) else id(key)


class _SpecConstructor(SafeConstructor):
    written_pairs: dict[int, list[tuple[yaml.Node, yaml.Node]]]  # from _BoundedComposer

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Nothing to do: merge keys are resolved while composing (``_merge``)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)  # raises its located error
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in self.written_pairs[id(node)]:
            key = self.construct_object(key_node, deep=True)
            _check_key(key, key_node)
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise YamlProblem(f"duplicate key {key!r} (first given on line {first})",
                                  *_at(key_node.start_mark))
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _check_key(key: Any, node: yaml.Node) -> None:
    if isinstance(key, str):
        return
    if isinstance(key, (list, dict, set)):
        raise YamlProblem("invalid YAML: a mapping key must be a plain value, not a list or "
                          "mapping", *_at(node.start_mark))
    what = {bool: "the boolean", type(None): "null"}.get(type(key), "the number")
    text = node.value if isinstance(node, yaml.ScalarNode) else repr(key)
    shown = f"{what} {text}" if text else "an empty key"
    raise YamlProblem(f"invalid YAML: a key must be a name, not {shown}",
                      *_at(node.start_mark))


for _tag, _construct in CONSTRUCTORS.items():
    _SpecConstructor.add_constructor(_tag, _construct)


class _Loader(Reader, _BoundedScanner, Parser, _BoundedComposer, _SpecConstructor, CoreResolver):
    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        _BoundedScanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _SpecConstructor.__init__(self)
        CoreResolver.__init__(self)


@dataclass
class Parsed:
    """One YAML document: its data and its node tree, which knows where each part was written.

    Positions are looked up on demand, along one path, so a document whose aliases expand to
    many values costs nothing here beyond what validating it costs.
    """

    data: Any
    root: yaml.Node | None = None

    def _walk(self, path: Loc) -> tuple[list[yaml.Node], yaml.Node | None]:
        """The nodes along ``path`` as far as it exists, and the key node of the last one."""
        nodes: list[yaml.Node] = [self.root] if self.root is not None else []
        key: yaml.Node | None = None
        for part in path:
            node = nodes[-1] if nodes else None
            if isinstance(node, yaml.MappingNode):
                pair = next(((k, v) for k, v in node.value
                             if isinstance(k, yaml.ScalarNode) and k.value == part), None)
                if pair is None:
                    break
                key = pair[0]
                nodes.append(pair[1])
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and \
                    0 <= part < len(node.value):
                key = None
                nodes.append(node.value[part])
            else:
                break
        return nodes, key

    def position(self, path: Loc, *, key: bool = False) -> tuple[int, int] | None:
        """(line, column) of the value at ``path``, or of its key; else of the nearest
        enclosing value that exists (a missing key is reported at its mapping)."""
        nodes, key_node = self._walk(path)
        if key and key_node is not None and len(nodes) == len(path) + 1:
            return _at(key_node.start_mark)
        return _at(nodes[-1].start_mark) if nodes else None

    def written(self, path: Loc) -> str | None:
        """The text of the number, boolean or null at ``path`` as the file spells it."""
        nodes, _ = self._walk(path)
        node = nodes[-1] if len(nodes) == len(path) + 1 else None
        if isinstance(node, yaml.ScalarNode) and node.tag in _WRITTEN_TAGS:
            return node.value
        return None


def _located(exc: yaml.MarkedYAMLError) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if problem.startswith("but ") and exc.context:  # "but found another document"
        problem = f"{exc.context} {problem}"
    if "could not determine a constructor" in problem:
        problem += " (only plain YAML is allowed: no tags like !!python/...)"
    elif "'\\t'" in problem:
        problem += " (YAML indents with spaces: replace the tab with spaces)"
    elif "another document" in problem:
        problem += " (a spec file holds one YAML document: remove the '---' line)"
    line, column = _at(mark) if mark else (None, None)
    return YamlProblem(f"invalid YAML: {problem}", line, column)


def parse_yaml(text: str) -> Parsed:
    """The data of one YAML document with the positions of its parts; YamlProblem on bad input."""
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
        parsed = Parsed(loader.construct_document(node), node)
    except yaml.MarkedYAMLError as exc:
        raise _located(exc) from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())  # one line
        raise YamlProblem(f"invalid YAML: {problem}", *_at(loader.get_mark())) from None
    except RecursionError:  # only if the interpreter's limit is far below MAX_DEPTH's needs
        mark = loader.get_mark()
        raise YamlProblem("invalid YAML: nested too deeply", *_at(mark)) from None
    finally:
        loader.dispose()
    return parsed
