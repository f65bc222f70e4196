"""The spec as an ``nn.Module``: its weights, and a forward pass that walks the spec's layers.

The module holds every declared weight slot of every layer (``row.slots``: shape,
trainability, ones or zeros until loaded) in torch layout (``layout.py``), as a parameter
where trainable, else as a buffer; the forward pass hands each layer's input and weights to
its kind's op (``ops.OPS``) and checks nothing else: shapes come from the shape table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ... import dropout
from ...shapes import LayerShape
from ...specification import Spec
from .layout import FlatOrder, Layout, flat_orders, weight_layout
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
        self.out_perm: dict[str, FlatOrder] = {}  # layer -> canonical = torch[:, perm]
        self.nodes: list[Node] = []
        order: FlatOrder = None
        for index, (layer, row) in enumerate(zip(spec.layers, self.table.rows, strict=True)):
            order_buffer = None if order is None else f"flat_order_{index}"
            if order_buffer is not None:  # torch feature -> its canonical index
                self.register_buffer(order_buffer, torch.from_numpy(np.argsort(order)),
                                     persistent=False)
            slot_orders, order = flat_orders(layer.kind, row, order)
            for slot, name, rows in zip(row.slots, row.weights, slot_orders, strict=True):
                layout = weight_layout(slot.shape, rows)
                shape = layout.torch_shape(slot.shape)
                tensor = torch.ones(shape) if slot.init == "ones" else torch.zeros(shape)
                self.attributes[name] = _attribute(name)
                if slot.trainable:
                    self.register_parameter(self.attributes[name], nn.Parameter(tensor))
                else:
                    self.register_buffer(self.attributes[name], tensor)
                self.layouts[name] = layout
            self.out_perm[row.name] = order
            activation = getattr(layer, "activation_layer", None)
            self.nodes.append(Node(OPS[layer.kind], index, activation, layer, row, order_buffer,
                                   tuple(self.attributes[name] for name in row.weights)))
        # A net may end flat but before any dense (e.g. conv -> flatten): reorder the logits.
        self.register_buffer("final_perm", None if order is None else torch.from_numpy(order),
                             persistent=False)

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

    def forward(self, x: torch.Tensor, mode: Mode = EVAL,
                collect: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits (N, classes) of NCHW images; ``collect`` receives every layer's output."""
        for node in self.nodes:
            call = Call(node.index, mode, node.activation,
                        None if node.order is None else getattr(self, node.order))
            x = node.op(call, node.layer, node.row, x, *(getattr(self, attribute)
                                                         for attribute in node.weights))
            if collect is not None:
                collect[node.row.name] = x
        return x if self.final_perm is None else x.index_select(1, self.final_perm)
