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
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..graph import IMAGE_INPUT
from ..layers.base import NAME_PATTERN, LayerName
from .checks import Problem

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


def hint(word: str, names: Sequence[str]) -> str:
    """``; did you mean 'x'?`` for the closest of ``names``, or ''."""
    from .messages import suggest  # only a spec with errors needs it (and difflib)

    return suggest(word, list(names))


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
                       f"{hint(key, declared) or '.'} Parameters: {', '.join(declared) or 'none'}",
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
                    close = hint(f"${param}", [f"${p}" for p in declared]) or "."
                    yield ((*at, "layers", j, *path), f"'${param}' is not a parameter of block "
                           f"{name!r}{close} Declare it: params: [{', '.join([*declared, param])}]",
                           f"${param}")
        for i, param in enumerate(declared):
            if param not in used:
                yield ((*at, "params", i), f"parameter {param!r} is never used: no layer of "
                       f"block {name!r} says ${param}", param)

