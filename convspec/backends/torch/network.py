"""The spec as an ``nn.Module``: its weights, and a forward pass that walks the spec's layers.

The module holds every declared weight slot of every layer (``row.slots``: shape,
trainability, ones or zeros until loaded) in torch layout (``layout.py``), as a parameter
where trainable, else as a buffer; the forward pass hands each layer the outputs it takes
(``row.inputs``: one tensor, or the tuple of them for a merge kind) and its weights, in the
spec's order (which puts every layer after the layers it takes), to its kind's op
(``ops.OPS``) and checks nothing else: shapes come from the shape table. The walk is resolved
once, at construction (``Node``), so every call, also under ``torch.compile``, is a straight
run of tensor ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ... import dropout
from ...graph import IMAGE_INPUT
from ...shapes import LayerShape
from ...specification import Spec
from .layout import FlatOrder, Layout, flat_orders, same_order, weight_layout
from .ops import EVAL, OPS, Call, Mode


@dataclass(frozen=True)
class Node:
    """One layer of the forward walk with everything it needs resolved once (the walk runs
    on every call, also under torch.compile, which should see no Python but tensors)."""

    op: Callable[..., torch.Tensor]
    index: int
    activation: Any | None  # the layer's own activation_layer (conv2d, dense)
    layer: Any
    row: LayerShape
    order: str | None  # buffer holding the canonical index of each flat input feature
    weights: tuple[str, ...]  # module attributes of the layer's weights, declared order
    sources: tuple[int, ...]  # the values it takes: 0 the image, i + 1 layer i's output
    to_canonical: tuple[str | None, ...]  # per source: buffer of its canonical order, or None
    release: tuple[int, ...]  # values no later layer takes (dropped, unless collected)


def _attribute(name: str) -> str:
    """The module attribute of canonical weight ``name``: ``conv1/kernel`` ->
    ``conv1__kernel`` (attributes cannot hold dots; slot names hold no ``__``, so the
    mapping is one to one and never meets an attribute of ``nn.Module``)."""
    return name.replace("/", "__")


class Network(nn.Module):
    """The compiled network: ``forward(x_nchw, mode, collect)`` -> logits (N, classes)."""

    def __init__(self, spec: Spec):
        super().__init__()
        self.spec = spec
        self.table = spec.table
        self.layouts: dict[str, Layout] = {}  # canonical weight name -> its torch layout
        self.attributes: dict[str, str] = {}  # canonical weight name -> module attribute
        self.out_perm: dict[str, FlatOrder] = {IMAGE_INPUT: None}  # canonical = torch[:, perm]
        self.nodes: list[Node] = []
        position = {IMAGE_INPUT: 0, **{row.name: i + 1 for i, row in enumerate(self.table.rows)}}
        last_use = {source: i for i, row in enumerate(self.table.rows) for source in row.inputs}
        for index, (layer, row) in enumerate(zip(spec.layers, self.table.rows, strict=True)):
            given = tuple(self.out_perm[source] for source in row.inputs)
            taken, slot_orders, self.out_perm[row.name] = flat_orders(layer.kind, row, given)
            to_canonical = tuple(
                None if same_order(have, want) else self._index(f"to_canonical_{index}_{i}", have)
                for i, (have, want) in enumerate(zip(given, taken, strict=True)))
            order_buffer = None  # torch feature -> its canonical index (dropout positions)
            if len(taken) == 1 and taken[0] is not None:
                order_buffer = self._index(f"flat_order_{index}", np.argsort(taken[0]))
            for slot, name, rows in zip(row.slots, row.weights, slot_orders, strict=True):
                self._add_weight(name, slot, weight_layout(layer.kind, slot.shape, rows))
            self.nodes.append(Node(
                OPS[layer.kind], index, getattr(layer, "activation_layer", None), layer, row,
                order_buffer, tuple(self.attributes[name] for name in row.weights),
                tuple(position[source] for source in row.inputs), to_canonical,
                tuple(sorted(position[s] for s in set(row.inputs) if last_use[s] == index))))
        del self.out_perm[IMAGE_INPUT]
        # A net may end flat but before any dense (e.g. conv -> flatten): reorder the logits.
        order = self.out_perm[self.table.rows[-1].name]
        self.register_buffer("final_perm", None if order is None else torch.from_numpy(order),
                             persistent=False)

    def _index(self, attribute: str, index: np.ndarray) -> str:
        """Register ``index`` as a (non-persistent) int64 buffer; its attribute name."""
        self.register_buffer(attribute, torch.from_numpy(np.asarray(index, dtype=np.int64)),
                             persistent=False)
        return attribute

    def _add_weight(self, name: str, slot: Any, layout: Layout) -> None:
        """One declared weight slot, ones or zeros until loaded: a parameter where trainable,
        else a buffer."""
        shape = layout.torch_shape(slot.shape)
        tensor = torch.ones(shape) if slot.init == "ones" else torch.zeros(shape)
        self.attributes[name] = _attribute(name)
        if slot.trainable:
            self.register_parameter(self.attributes[name], nn.Parameter(tensor))
        else:
            self.register_buffer(self.attributes[name], tensor)
        self.layouts[name] = layout

    def dropout_keys(self, step: int) -> list[int]:
        """``convspec.dropout.key`` of every layer for the update at ``step`` (0 for layers
        that drop nothing); empty when none does."""
        seed, layers = self.spec.train.seed, self.spec.layers
        if not any(layer.kind == "dropout" and layer.rate > 0 for layer in layers):
            return []
        return [dropout.key(seed, step, index) if layer.kind == "dropout" else 0
                for index, layer in enumerate(layers)]

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """Canonical weight name -> tensor (looked up on each use: ``Module.to`` replaces
        buffers with new tensors)."""
        return {name: getattr(self, attribute) for name, attribute in self.attributes.items()}

    def _inputs(self, node: Node, values: list[Any]) -> Any:
        """What ``node`` takes: one tensor, or the tuple of them (a merge kind), each in the
        flat order the node takes it in."""
        xs = tuple(values[source] if convert is None
                   else values[source].index_select(1, getattr(self, convert))
                   for source, convert in zip(node.sources, node.to_canonical))
        return xs[0] if len(xs) == 1 else xs

    def forward(self, x: torch.Tensor, mode: Mode = EVAL,
                collect: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits (N, classes) of NCHW images; ``collect`` receives every layer's output."""
        values: list[Any] = [x, *(None for _ in self.nodes)]
        for node in self.nodes:
            call = Call(node.index, mode, node.activation,
                        None if node.order is None else getattr(self, node.order))
            x = node.op(call, node.layer, node.row, self._inputs(node, values),
                        *(getattr(self, attribute) for attribute in node.weights))
            values[node.index + 1] = x
            for source in node.release:  # free what no later layer takes
                values[source] = None
            if collect is not None:
                collect[node.row.name] = x
        return x if self.final_perm is None else x.index_select(1, self.final_perm)
