"""Cross-field checks that pydantic's per-field validation cannot express.

Each check is a small function registered in ``CHECKS``; it yields (location, message, value)
triples. ``Spec``'s model validator runs them (so every Spec, however it was built, passes
them) and reports each at its location, which the loader places in the YAML file. Shape
checks live with the layer declarations and ``convspec.shapes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..graph import IMAGE_INPUT

if TYPE_CHECKING:
    from .model import Spec

Problem = tuple[tuple[Any, ...], str, Any]
CHECKS: list[Callable[[Spec], Iterator[Problem]]] = []


def check(fn: Callable[[Spec], Iterator[Problem]]) -> Callable[[Spec], Iterator[Problem]]:
    CHECKS.append(fn)
    return fn


@check
def unique_names(spec: Spec) -> Iterator[Problem]:
    """Given names must be unique; reported at every later use."""
    first: dict[str, int] = {}
    for i, layer in enumerate(spec.layers):
        if layer.name is None:
            continue
        if layer.name in first:
            yield (("layers", i, layer.kind, "name"),
                   f"duplicate layer name {layer.name!r} (also "
                   f"{spec.origins[first[layer.name]].where}); layer names must be unique",
                   layer.name)
        else:
            first[layer.name] = i


@check
def image_input_name(spec: Spec) -> Iterator[Problem]:
    """``input`` names the image in ``inputs:`` lists, so no layer may be called that."""
    for i, layer in enumerate(spec.layers):
        if layer.name == IMAGE_INPUT:
            yield (("layers", i, layer.kind, "name"), f"{IMAGE_INPUT!r} names the image in "
                   f"inputs: lists; choose another layer name", layer.name)


def resolve_names(layers: Sequence[Any], reserved: Iterable[str] = ()) -> None:
    """Name each unnamed layer ``<name_prefix><n>``, skipping names in use and ``reserved``
    ones (conv1, pool1, fc1 ... as in the tutorial)."""
    taken = {layer.name for layer in layers if layer.name is not None} | set(reserved)
    counters: dict[str, int] = {}
    for layer in layers:
        if layer.name is not None:
            continue
        prefix = layer.name_prefix
        while True:
            counters[prefix] = counters.get(prefix, 0) + 1
            candidate = f"{prefix}{counters[prefix]}"
            if candidate not in taken:
                break
        layer.name = candidate
        taken.add(candidate)


def run_checks(spec: Spec) -> list[Problem]:
    return [problem for fn in CHECKS for problem in fn(spec)]
