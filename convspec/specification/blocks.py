"""Reusable blocks: named groups of layers with parameters, written once, used many times.

A spec's top-level ``blocks:`` maps a block name to its ``params`` (names), ``defaults`` and
``layers`` (plain layer entries in which a whole value ``$name`` stands for a parameter). A
layer ``{kind: block, block: basic, name: layer1_0, filters: 64}`` instantiates it: the
block's layers, with the arguments put in, named ``<instance>_<layer>`` (``layer1_0_conv1``).
Inside a block ``input`` is the block's input: the instance's one ``inputs`` entry, else the
layer before the instance. Later layers may name the instance: that is its last layer.

Expansion happens once, while the spec is validated (``Spec`` holds the plain layers); it is
plain data substitution, nothing is executed. Every problem is located: at the instance
(unknown block, missing or unknown argument), at the argument a bad value came from, or at
the block's own layer (with the instance named).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..graph import IMAGE_INPUT
from ..layers import Layer
from ..layers.base import NAME_PATTERN, LayerName
from .checks import Problem, resolve_names

PARAMETER = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
Loc = tuple[Any, ...]


class Block(BaseModel):
    """A named group of layers with parameters (``$name`` in their values)."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    description: str = Field("", description="Free text.")
    params: list[LayerName] = Field(
        default_factory=list, description="Parameter names; '$name' in a layer value is "
        "replaced by the instance's argument (or the default).")
    defaults: dict[str, Any] = Field(default_factory=dict,
                                     description="Default values of some parameters.")
    layers: Annotated[list[dict[str, Any]], Field(min_length=1)] = Field(
        description="The block's layers, as in the spec's layers list; 'input' in their "
        "inputs is the block's input; the last layer is the block's output.")


class BlockCall(BaseModel):
    """One use of a block; its other keys are the block's arguments."""

    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)

    kind: Literal["block"] = Field(description="An instance of a block from `blocks`")
    block: str = Field(description="The block's name in the top-level `blocks` mapping.")
    name: str | None = Field(None, pattern=NAME_PATTERN,
                             description="Instance name, the prefix of its layers' names "
                             "(layer1_0 -> layer1_0_conv1); default: block name + counter.")
    inputs: Annotated[list[LayerName], Field(min_length=1, max_length=1)] | None = Field(
        None, description="The one layer the block takes ('input' inside it); default: "
        "the previous layer.")


@dataclass(frozen=True)
class Origin:
    """Where a layer of the expanded spec was written: ``loc`` (``('layers', 3)`` or
    ``('blocks', 'basic', 'layers', 0)``) and, for a block's layer, the instance."""

    loc: Loc
    instance: str | None = None
    instance_loc: Loc | None = None

    @property
    def where(self) -> str:
        """``layers[3]``, or ``blocks.basic.layers[0] of instance layer1_0 (layers[3])``."""
        if self.instance is None:
            return _render(self.loc)
        return f"{_render(self.loc)} of instance {self.instance} ({_render(self.instance_loc)})"

    def locate(self, loc: Loc, message: str) -> tuple[Loc, str]:
        """A problem at ``('layers', k, ...)`` of the expanded spec, placed where written."""
        if self.instance is None:
            return (*self.loc, *loc[2:]), message
        return (*self.loc, *loc[2:]), f"{message} (in block instance {self.instance}, " \
                                      f"{_render(self.instance_loc)})"


def _render(loc: Loc) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


class _Template(BaseModel):
    # A block's layer with its arguments put in, validated like a spec's layer.
    model_config = ConfigDict(strict=True, defer_build=True)
    layer: Layer


@dataclass
class Expansion:
    """The plain layers, where each was written, and the problems found on the way."""

    layers: list[Any] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    instances: dict[str, str] = field(default_factory=dict)  # instance -> its last layer


def _uses(value: Any, path: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """(path, parameter) of every ``$parameter`` inside a layer entry."""
    if isinstance(value, str) and PARAMETER.match(value):
        yield path, value[1:]
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _uses(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _uses(item, (*path, i))


def _put(value: Any, args: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and PARAMETER.match(value):
        return args[value[1:]]
    if isinstance(value, dict):
        return {key: _put(item, args) for key, item in value.items()}
    if isinstance(value, list):
        return [_put(item, args) for item in value]
    return value


def _hint(word: str, names: Sequence[str], prefix: str = "") -> str:
    import difflib

    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]!r}?" if close else ""


def definition_problems(blocks: Mapping[str, Block]) -> Iterator[Problem]:
    """What is wrong with the block definitions themselves, whether used or not."""
    for name, block in blocks.items():
        at = ("blocks", name)
        if not re.match(NAME_PATTERN, name):
            yield at, f"block name {name!r} must start with a letter or '_' and contain only " \
                      f"letters, digits and '_'", name
        declared = block.params
        for i, param in enumerate(declared):
            if param in declared[:i]:
                yield (*at, "params", i), f"parameter {param!r} is declared twice", param
        for key in block.defaults:
            if key not in declared:
                yield ((*at, "defaults", key), f"default for {key!r}, which is not a parameter"
                       f"{_hint(key, declared) or '.'} Parameters: {', '.join(declared) or 'none'}",
                       key)
        used = set()
        for j, entry in enumerate(block.layers):
            if entry.get("name") == IMAGE_INPUT:
                yield ((*at, "layers", j, "name"), "'input' is the block's input in inputs: "
                       "lists; choose another layer name", IMAGE_INPUT)
            if entry.get("kind") == "block":
                yield ((*at, "layers", j, "kind"), "a block cannot contain a block instance; "
                       "write that block's layers here", "block")
            for path, param in _uses(entry):
                used.add(param)
                if param not in declared:
                    hint = _hint(param, declared, "$") or "."
                    yield ((*at, "layers", j, *path), f"'${param}' is not a parameter of block "
                           f"{name!r}{hint} Declare it: params: [{', '.join([*declared, param])}]",
                           f"${param}")
        for i, param in enumerate(declared):
            if param not in used:
                yield ((*at, "params", i), f"parameter {param!r} is never used: no layer of "
                       f"block {name!r} says ${param}", param)


def _arguments(call: BlockCall, block: Block, i: int) -> tuple[dict[str, Any], list[Problem]]:
    args = dict(call.model_extra or {})
    problems: list[Problem] = []
    params = block.params
    for key in args:
        if key not in params:
            problems.append((("layers", i, "block", key), f"block {call.block!r} has no parameter "
                             f"{key!r}{_hint(key, params) or '.'} Parameters: "
                             f"{', '.join(params) or 'none'}", args[key]))
    missing = [p for p in params if p not in args and p not in block.defaults]
    if missing:
        problems.append((("layers", i, "block"), f"block {call.block!r} needs a value for "
                         f"{', '.join(repr(p) for p in missing)} (parameters: {', '.join(params)}"
                         f"; defaults: {_defaults(block)})", call.block))
    return {**block.defaults, **args}, problems


def _defaults(block: Block) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in block.defaults.items()) or "none"


def _template_problems(exc: ValidationError, entry: dict[str, Any], j: int, call: BlockCall,
                       i: int) -> list[Problem]:
    """Validation errors of a block's layer: at the argument (or default) the bad value came
    from, else at the block's layer, with the instance named."""
    from .messages import describe

    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"][1:])
        path = loc[1:] if loc and loc[0] == entry.get("kind") else loc
        message = describe(error, _Template)
        value = entry.get(path[0]) if len(path) == 1 else None
        found = PARAMETER.match(value) if isinstance(value, str) else None
        used = f"(block {call.block!r} uses it for {entry.get('name', f'layers[{j}]')}.{path[0]})" \
            if found else ""
        if found and found.group(1) in (call.model_extra or {}):
            problems.append((("layers", i, "block", found.group(1)), f"{message} {used}",
                             error.get("input")))
        elif found:
            problems.append((("blocks", call.block, "defaults", found.group(1)),
                             f"{message} {used}", error.get("input")))
        else:
            problems.append((("blocks", call.block, "layers", j, *loc), f"{message} (in block "
                             f"instance {call.name}, layers[{i}])", error.get("input")))
    return problems


def _instance_names(entries: Sequence[Any], out: Expansion) -> set[str]:
    """Name unnamed instances ``<block><n>`` (after every given name); report clashes."""
    first: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if entry.name is None:
            continue
        at = first.setdefault(entry.name, i)
        if at != i and BlockCall in (type(entry), type(entries[at])):
            out.problems.append((("layers", i, entry.kind, "name"), f"duplicate name "
                                 f"{entry.name!r} (also layers[{at}]); layer and block "
                                 f"instance names must be unique", entry.name))
    taken, counters = set(first), {}
    for entry in entries:
        if isinstance(entry, BlockCall) and entry.name is None:
            while entry.name is None or entry.name in taken:
                counters[entry.block] = counters.get(entry.block, 0) + 1
                entry.name = f"{entry.block}{counters[entry.block]}"
            taken.add(entry.name)
    return {entry.name for entry in entries if isinstance(entry, BlockCall)}


def _instantiate(call: BlockCall, i: int, blocks: Mapping[str, Block],
                 out: Expansion) -> list[Any] | None:
    """The instance's layers, validated and named locally; None (problems noted) if it
    cannot be built."""
    block = blocks.get(call.block)
    if block is None:
        known = sorted(blocks)
        out.problems.append((("layers", i, "block", "block"), f"unknown block {call.block!r}"
                             f"{_hint(call.block, known) or '.'} Blocks: "
                             f"{', '.join(known) or 'none (define them under blocks:)'}",
                             call.block))
        return None
    args, problems = _arguments(call, block, i)
    models = []
    for j, entry in enumerate(block.layers if not problems else ()):
        try:
            models.append(_Template.model_validate({"layer": _put(entry, args)}).layer)
        except ValidationError as exc:
            problems += _template_problems(exc, entry, j, call, i)
    # one problem per place: a block's own layer once, for its first instance; an argument
    # once, however many of the block's layers use it
    problems = [p for i, p in enumerate(problems) if not any(
        q[0] == p[0] for q in [*out.problems, *problems[:i]])]
    out.problems += problems
    if problems or len(models) < len(block.layers):
        return None
    resolve_names(models)
    return models


def _connect(call: BlockCall, layers: list[Any], start: int, local: list[str],
             flat: list[Any], out: Expansion) -> None:
    """Rewrite the inputs of an instance's layers (at ``flat[start:]``) to expanded names."""
    names = dict(zip(local, (layer.name for layer in layers)))
    if call.inputs:
        source = out.instances.get(call.inputs[0], call.inputs[0])
    else:
        source = flat[start - 1].name if start else IMAGE_INPUT
    for j, layer in enumerate(layers):
        if not layer.inputs:
            if j == 0 and call.inputs:
                layer.inputs = [source]
            continue
        rewritten = []
        for k, ref in enumerate(layer.inputs):
            if ref == IMAGE_INPUT or ref in names:
                rewritten.append(source if ref == IMAGE_INPUT else names[ref])
                continue
            problem = (("blocks", call.block, "layers", j, layer.kind, "inputs", k),
                       f"unknown input {ref!r}{_hint(ref, [IMAGE_INPUT, *local]) or '.'} Inside "
                       f"a block, layers take 'input' (the block's input) or the block's "
                       f"layers: {', '.join(local)}", ref)
            if problem not in out.problems:
                out.problems.append(problem)
        layer.inputs = rewritten


def expand(entries: Sequence[Any], blocks: Mapping[str, Block],
           broken: set[str] = frozenset()) -> Expansion:  # type: ignore[assignment]
    """The spec's ``layers`` with every block instance replaced by its layers, all named
    (top-level ones as ``resolve_names`` does, skipping the expanded names), each with its
    origin. Instances of the ``broken`` blocks (whose definitions have problems) are left
    out. A list without instances is returned as it is, names unresolved."""
    out = Expansion()
    if not any(isinstance(entry, BlockCall) for entry in entries):
        out.layers = list(entries)
        out.origins = [Origin(("layers", i)) for i in range(len(entries))]
        return out
    reserved = _instance_names(entries, out)
    spans = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, BlockCall):
            out.layers.append(entry)
            out.origins.append(Origin(("layers", i)))
            continue
        models = None if entry.block in broken else _instantiate(entry, i, blocks, out)
        if models is None:
            continue
        local = [model.name for model in models]
        for j, model in enumerate(models):
            model.name = f"{entry.name}_{model.name}"
            out.origins.append(Origin(("blocks", entry.block, "layers", j), entry.name,
                                      ("layers", i)))
        spans.append((entry, len(out.layers), models, local))
        out.layers.extend(models)
        out.instances[entry.name] = models[-1].name
    resolve_names(out.layers, reserved)
    for entry, start, models, local in spans:
        _connect(entry, models, start, local, out.layers, out)
    for layer, origin in zip(out.layers, out.origins):
        if origin.instance is None and layer.inputs:
            layer.inputs = [out.instances.get(ref, ref) for ref in layer.inputs]
    return out
