"""Block expansion: a spec's layers with every block instance replaced by the block's layers.

Plain data substitution, nothing executed (``convspec.specification.blocks`` says what a block
is): each instance gets its name (given, or ``<block><n>``), its arguments put in for the
``$parameters`` of the block's layers, which are validated like any layer, named
``<instance>_<name>`` and connected (``input`` is the instance's input; later layers naming the
instance take its last layer). Every problem is located where it was written: at the
instance, at the argument (or default) a bad value came from, or at the block's layer with the
instance named.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..graph import IMAGE_INPUT
from ..layers import Layer
from .blocks import PARAMETER, Block, BlockCall, Origin, hint
from .checks import Problem, resolve_names


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


def _put(value: Any, args: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and PARAMETER.match(value):
        return args[value[1:]]
    if isinstance(value, dict):
        return {key: _put(item, args) for key, item in value.items()}
    if isinstance(value, list):
        return [_put(item, args) for item in value]
    return value


def _arguments(call: BlockCall, block: Block, i: int) -> tuple[dict[str, Any], list[Problem]]:
    args = dict(call.model_extra or {})
    problems: list[Problem] = []
    params = block.params
    for key in args:
        if key not in params:
            problems.append((("layers", i, "block", key), f"block {call.block!r} has no parameter "
                             f"{key!r}{hint(key, params) or '.'} Parameters: "
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
                             f"{hint(call.block, known) or '.'} Blocks: "
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
    problems = [p for n, p in enumerate(problems) if not any(
        q[0] == p[0] for q in [*out.problems, *problems[:n]])]
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
                       f"unknown input {ref!r}{hint(ref, [IMAGE_INPUT, *local]) or '.'} Inside "
                       f"a block, layers take 'input' (the block's input) or the block's "
                       f"layers: {', '.join(local)}", ref)
            if problem not in out.problems:
                out.problems.append(problem)
        layer.inputs = rewritten


def expand(entries: Sequence[Any], blocks: Mapping[str, Block],
           broken: Collection[str] = ()) -> Expansion:
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
