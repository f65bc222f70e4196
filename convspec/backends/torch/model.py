"""The spec as an ``nn.Module``: NCHW inside, one submodule per layer, TensorFlow numerics.

Everything runs in torch's native layout (the fast path); canonical layouts exist only at
the edge (``layout.py``: each canonical weight name maps to a ``Slot``). Torch flattens NCHW
in C, H, W order, the canonical order is H, W, C: instead of permuting activations every step,
the rows of the first dense kernel after a flatten (and the parameters of any batch norm
between the two) are stored permuted (``Op.flat_order``), so the forward pass never reorders
anything; ``Net.out_perm`` tells the edge how to reorder flat outputs.

Padding amounts always come from the shape table (``row.pads``), never recomputed here, and so
do the weights: each module holds its layer's declared slots (``row.slots``) in declared order
under torch's names (``TENSORS``), as parameters where trainable, else as buffers.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...shapes import LayerShape
from ...specification import Spec
from .layout import HWIO_TO_OIHW, FlatOrder, Slot, flatten_perm

Pads = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Mode:
    """How a forward pass runs: train (batch stats, dropout) or eval, and its side effects."""

    training: bool = False
    update_stats: bool = False  # train_step updates moving stats; gradients() must not
    generator: torch.Generator | None = None  # dropout masks, seeded per optimizer step


EVAL = Mode()


# Activation kind -> the function its layer model (for its parameters) stands for; softmax is
# over channels (dim 1 in NCHW).
ACTIVATIONS: dict[str, Callable[[Any], Callable[[torch.Tensor], Any]]] = {
    "relu": lambda layer: torch.relu,
    "tanh": lambda layer: torch.tanh,
    "sigmoid": lambda layer: torch.sigmoid,
    "leaky_relu": lambda layer: functools.partial(F.leaky_relu, negative_slope=layer.alpha),
    "softmax": lambda layer: functools.partial(torch.softmax, dim=1),
}


def activation_fn(layer: Any | None) -> Callable[[torch.Tensor], Any] | None:
    """The activation layer ``layer`` as a function (None for no activation)."""
    return None if layer is None else ACTIVATIONS[layer.kind](layer)


def split_pads(pads: Pads, limit: tuple[int, int] | None = None
               ) -> tuple[tuple[int, int, int, int] | None, tuple[int, int]]:
    """(explicit F.pad amounts or None, symmetric padding for the op itself).

    Symmetric padding (within ``limit``, torch's max-pool restriction) goes to the op, which
    avoids a copy; anything else (TF SAME's larger half at the bottom/right) is padded first.
    """
    (top, bottom), (left, right) = pads
    if top == bottom and left == right and (limit is None or (top <= limit[0]
                                                              and left <= limit[1])):
        return None, (top, left)
    return (left, right, top, bottom), (0, 0)


class Op(nn.Module):
    """Base of the layer modules (``forward(x, mode)``): holds the layer's declared weight
    slots under the names in ``TENSORS`` (those in ``OIHW`` are conv kernels, HWIO canonical),
    with the slot's trainability and its constant initial value (ones or else zeros)."""

    TENSORS: tuple[str, ...] = ()
    OIHW: tuple[str, ...] = ()

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__()
        for attr, slot in itertools.zip_longest(self.TENSORS, row.slots):
            if slot is None:  # an optional slot the layer does not have (bias: false)
                self.register_parameter(attr, None)
                continue
            shape = slot.shape
            if attr in self.OIHW:
                shape = tuple(shape[axis] for axis in HWIO_TO_OIHW)
            tensor = torch.ones(shape) if slot.init == "ones" else torch.zeros(shape)
            if slot.trainable:
                self.register_parameter(attr, nn.Parameter(tensor))
            else:
                self.register_buffer(attr, tensor)

    def flat_order(self, row: LayerShape, order: FlatOrder) -> tuple[list[FlatOrder], FlatOrder]:
        """Given the flat order of the input, the row order each held tensor is stored in and
        the flat order of the output. Default: nothing held, the order passes through."""
        return [None] * len(row.slots), order


class Conv2d(Op):
    TENSORS, OIHW = ("weight", "bias"), ("weight",)

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__(layer, row)
        self.stride, self.dilation = layer.stride, layer.dilation
        self.pad, self.padding = split_pads(row.pads)
        self.act = activation_fn(layer.activation_layer)

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        return y if self.act is None else self.act(y)


class MaxPool(Op):
    """Padded cells are -inf, so they never win (SAME windows always hold a real cell)."""

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__(layer, row)
        self.size, self.stride = layer.size, layer.strides
        self.pad, self.padding = split_pads(row.pads, (self.size[0] // 2, self.size[1] // 2))

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride, self.padding)


class AvgPool(Op):
    """Sum over the zero-padded input divided by a precomputed count of real cells per window.

    Exact for any padding (asymmetric too), unlike count_include_pad, whose count is only
    right for padding torch itself applies.
    """

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__(layer, row)
        self.size, self.stride = layer.size, layer.strides
        (top, bottom), (left, right) = row.pads
        self.pad = (left, right, top, bottom) if any(row.pads[0] + row.pads[1]) else None
        count = None
        if self.pad is not None:
            ones = F.pad(torch.ones(1, 1, row.input[0], row.input[1]), self.pad)
            count = F.avg_pool2d(ones, self.size, self.stride, divisor_override=1)
        self.register_buffer("count", count, persistent=False)

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        if self.pad is None:
            return F.avg_pool2d(x, self.size, self.stride)
        total = F.avg_pool2d(F.pad(x, self.pad), self.size, self.stride, divisor_override=1)
        return total / self.count


class Dense(Op):
    """Weight kept as canonical (inputs, units), unlike ``nn.Linear``, so ``x @ weight`` needs
    no transpose; its rows follow the flat order of the input (see the module docstring)."""

    TENSORS = ("weight", "bias")

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__(layer, row)
        self.act = activation_fn(layer.activation_layer)

    def flat_order(self, row: LayerShape, order: FlatOrder) -> tuple[list[FlatOrder], FlatOrder]:
        return [order, None][:len(row.slots)], None

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        y = torch.mm(x, self.weight) if self.bias is None else torch.addmm(self.bias, x,
                                                                           self.weight)
        return y if self.act is None else self.act(y)


class BatchNorm(Op):
    """Keras semantics: biased batch variance for normalising and for the moving update.
    Scale, offset and moving statistics are held under ``nn.BatchNorm2d``'s names."""

    TENSORS = ("weight", "bias", "running_mean", "running_var")

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__(layer, row)
        self.momentum, self.epsilon = layer.momentum, layer.epsilon

    def flat_order(self, row: LayerShape, order: FlatOrder) -> tuple[list[FlatOrder], FlatOrder]:
        return [order] * len(row.slots), order

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        x = x.float()  # statistics in float32 under mixed precision too
        shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
        if mode.training:
            var, mean = torch.var_mean(x, dim=(0, 2, 3) if x.dim() == 4 else 0, correction=0,
                                       keepdim=True)
            if mode.update_stats:
                m = self.momentum
                with torch.no_grad():
                    self.running_mean.mul_(m).add_(mean.reshape(-1), alpha=1 - m)
                    self.running_var.mul_(m).add_(var.reshape(-1), alpha=1 - m)
        else:
            mean, var = self.running_mean.view(shape), self.running_var.view(shape)
        scale = self.weight.view(shape) * torch.rsqrt(var + self.epsilon)
        return (x - mean) * scale + self.bias.view(shape)


class Dropout(Op):
    """Inverted dropout, training only; masks come from the mode's (per-step) generator."""

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__(layer, row)
        self.rate = layer.rate

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        if not mode.training or self.rate == 0:
            return x
        noise = torch.rand(x.shape, generator=mode.generator, device=x.device, dtype=x.dtype)
        return x * (noise >= self.rate).to(x.dtype).mul_(1.0 / (1.0 - self.rate))


class Flatten(Op):
    def flat_order(self, row: LayerShape, order: FlatOrder) -> tuple[list[FlatOrder], FlatOrder]:
        return [], flatten_perm(row.input)

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        return x.flatten(1)  # C, H, W order; see the module docstring


class Activation(Op):
    def __init__(self, layer: Any, row: LayerShape):
        super().__init__(layer, row)
        self.fn = activation_fn(layer)

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        return self.fn(x)


# Layer kind -> module (one op per kind).
LAYERS: dict[str, type[Op]] = {
    "conv2d": Conv2d, "maxpool": MaxPool, "avgpool": AvgPool, "dense": Dense,
    "batchnorm": BatchNorm, "dropout": Dropout, "flatten": Flatten,
    **dict.fromkeys(ACTIVATIONS, Activation),
}


def _module_key(name: str, taken: nn.ModuleDict) -> str:
    """The layer's name, unless ModuleDict refuses it (a layer called ``train``, ``_modules``
    ...: keys may not shadow module attributes); then a prefixed, still unique, key."""
    key = name
    while hasattr(taken, key) or key in taken:
        key = f"layer_{key}"
    return key


class Net(nn.Module):
    """The compiled network: ``forward(x_nchw, mode, collect)`` -> logits (N, classes)."""

    def __init__(self, spec: Spec):
        super().__init__()
        self.layers = nn.ModuleDict()
        self.order: list[tuple[str, Op]] = []
        self.slots: dict[str, Slot] = {}
        self.out_perm: dict[str, np.ndarray | None] = {}
        perm: FlatOrder = None
        for layer, row in zip(spec.layers, spec.table.rows, strict=True):
            module = LAYERS[layer.kind](layer, row)
            self.layers[_module_key(row.name, self.layers)] = module
            self.order.append((row.name, module))
            rows, perm = module.flat_order(row, perm)
            for name, attr, order in zip(row.weights, module.TENSORS[:len(row.slots)], rows,
                                         strict=True):
                layout = {} if order is None else {"perm": order, "inverse": np.argsort(order)}
                self.slots[name] = Slot(module, attr, conv=attr in module.OIHW, **layout)
            self.out_perm[row.name] = perm
        self.has_dropout = any(isinstance(m, Dropout) and m.rate > 0 for _, m in self.order)
        # A net may end flat but before any dense (e.g. conv -> flatten): reorder the logits.
        self.register_buffer("final_perm", None if perm is None else torch.from_numpy(perm),
                             persistent=False)

    def forward(self, x: torch.Tensor, mode: Mode = EVAL,
                collect: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        for name, module in self.order:
            x = module(x, mode)
            if collect is not None:
                collect[name] = x
        return x if self.final_perm is None else x.index_select(1, self.final_perm)
