"""Cross-field checks that pydantic's per-field validation cannot express.

Each check is a small function registered in ``CHECKS``; it yields (location, message, value)
triples. ``Spec``'s model validator runs them (so every Spec, however it was built, passes
them) and reports each at its location, which the loader places in the YAML file. Shape
checks live with the layer declarations and ``convspec.shapes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

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
                   f"duplicate layer name {layer.name!r} (also layers[{first[layer.name]}]); "
                   f"layer names must be unique", layer.name)
        else:
            first[layer.name] = i


def resolve_names(layers: Sequence[Any]) -> None:
    """Name each unnamed layer ``<name_prefix><n>``, skipping names in use (conv1, pool1,
    fc1 ... as in the tutorial). Given names must already be unique."""
    taken = {layer.name for layer in layers if layer.name is not None}
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
