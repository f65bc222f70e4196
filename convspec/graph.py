"""The network as a graph: which outputs each layer takes, and the rules a graph must obey.

A spec's ``layers`` are listed in an order every layer's inputs come before it (a topological
order, as in Caffe's prototxt). A layer takes the outputs named in its ``inputs`` (``input``
is the image), else the previous layer's (the image for the first), so a plain stack is the
graph it always was. The last layer is the network's output; every other layer's output must
be taken by some later layer. Framework-free; the checks yield located problems that the spec's
validation reports (``convspec.specification.checks``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

IMAGE_INPUT = "input"  # the image's name in ``inputs:``; no layer may be called this
Problem = tuple[tuple[Any, ...], str, Any]


def resolved_inputs(layers: Sequence[Any]) -> list[tuple[str, ...]]:
    """Per layer (all named), the names of the outputs it takes, ``input`` for the image."""
    out = []
    for index, layer in enumerate(layers):
        if layer.inputs:
            out.append(tuple(layer.inputs))
        else:
            out.append((layers[index - 1].name,) if index else (IMAGE_INPUT,))
    return out


def is_stack(layers: Sequence[Any]) -> bool:
    """True when every layer takes exactly the previous one (the image for the first): the
    network is a plain stack, however its ``inputs`` are written."""
    previous = [IMAGE_INPUT, *(layer.name for layer in layers)]
    return all(inputs == (previous[i],) for i, inputs in enumerate(resolved_inputs(layers)))


def _did_you_mean(word: str, names: Sequence[str]) -> str:
    from .specification.messages import suggest  # only a spec with errors needs it

    return suggest(word, list(names))


def _path(layers: Sequence[Any], inputs: list[tuple[str, ...]], index: dict[str, int],
          start: int, goal: int) -> list[int] | None:
    """Layer indices from ``start`` back to ``goal``, each taking the next; None if none."""
    stack, seen = [[start]], {start}
    while stack:
        path = stack.pop()
        for source in inputs[path[-1]]:
            at = index.get(source)
            if at == goal:
                return [*path, goal]
            if at is not None and at not in seen:
                seen.add(at)
                stack.append([*path, at])
    return None


def graph_problems(layers: Sequence[Any]) -> Iterator[Problem]:
    """Unknown input names (with a did-you-mean), self-references, forward references and
    cycles, and outputs no later layer takes. ``layers`` are validated and named."""
    index = {layer.name: i for i, layer in enumerate(layers)}
    inputs = resolved_inputs(layers)
    for k, layer in enumerate(layers):
        for j, source in enumerate(layer.inputs or ()):
            loc = ("layers", k, layer.kind, "inputs", j)
            at = index.get(source)
            if source == IMAGE_INPUT or (at is not None and at < k):
                continue
            if at is None:
                known = [IMAGE_INPUT, *(lay.name for lay in layers[:k])]
                yield (loc, f"unknown input {source!r}{_did_you_mean(source, known)} "
                            f"A layer takes 'input' (the image) or layers listed before it",
                       source)
            elif at == k:
                yield loc, f"layer {source!r} takes its own output: a cycle", source
            else:
                cycle = _path(layers, inputs, index, at, k)
                if cycle is not None:
                    flow = " -> ".join(layers[i].name for i in [*reversed(cycle), k])
                    yield (loc, f"these layers form a cycle: {flow} (each takes the one "
                                f"before it); a network has no cycles", source)
                else:
                    yield (loc, f"{source!r} is listed after {layer.name!r}; a layer takes "
                                f"only layers listed before it, so move {source!r} up", source)
    used = {source for sources in inputs for source in sources}
    for k, layer in enumerate(layers[:-1]):
        if layer.name not in used:
            yield (("layers", k, layer.kind),
                   f"the output of {layer.name!r} is never used: no later layer takes it, and "
                   f"only the last layer ({layers[-1].name}) is the network's output; name it "
                   f"in a later layer's inputs, or remove it", layer.name)
