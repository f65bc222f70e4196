"""Cross-field checks that pydantic's per-field validation cannot express.

Each check is a small function registered in ``CHECKS``; it returns (location, message)
pairs so the loader can place them in the YAML file. Shape checks live in ``shapes.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .layers import NAME_PREFIX
from .model import Spec

Problem = tuple[tuple[Any, ...], str]
CHECKS: list[Callable[[Spec], Iterator[Problem]]] = []


def check(fn: Callable[[Spec], Iterator[Problem]]) -> Callable[[Spec], Iterator[Problem]]:
    CHECKS.append(fn)
    return fn


@check
def unique_names(spec: Spec) -> Iterator[Problem]:
    """Given names must be unique; others get ``<prefix><n>`` skipping names in use."""
    first: dict[str, int] = {}
    for i, layer in enumerate(spec.layers):
        if layer.name is None:
            continue
        if layer.name in first:
            yield (("layers", i, layer.kind, "name"),
                   f"duplicate layer name {layer.name!r} (also layers[{first[layer.name]}]); "
                   f"layer names must be unique")
        else:
            first[layer.name] = i
    counters: dict[str, int] = {}
    for layer in spec.layers:
        if layer.name is not None:
            continue
        prefix = NAME_PREFIX[layer.kind]
        while True:
            counters[prefix] = counters.get(prefix, 0) + 1
            candidate = f"{prefix}{counters[prefix]}"
            if candidate not in first:
                break
        layer.name = candidate
        first[candidate] = -1


def run_checks(spec: Spec) -> list[Problem]:
    return [problem for fn in CHECKS for problem in fn(spec)]
