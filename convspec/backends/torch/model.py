"""The spec as an ``nn.Module``: NCHW inside, one submodule per layer, TensorFlow numerics.

Everything runs in torch's native layout (the fast path); canonical layouts exist only at
the edge. Each canonical weight name maps to a ``Slot``: the tensor that holds it plus the
exact (bit-preserving) conversion between its canonical and torch layouts:

* conv kernels: canonical HWIO <-> torch OIHW;
* flatten: torch flattens NCHW in C, H, W order, canonical order is H, W, C. Instead of
  permuting activations every step, the rows of the first dense kernel after a flatten (and
  the parameters of any batch norm between the two) are stored permuted, so the forward pass
  never reorders anything; ``Net.out_perm`` tells the edge how to reorder flat outputs.

Padding amounts always come from the shape table (``row.pads``), never recomputed here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...shapes import LayerShape, infer_shapes
from ...specification import Spec
from ...weights import weight_shapes

Pads = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Mode:
    """How a forward pass runs: train (batch stats, dropout) or eval, and its side effects."""

    training: bool = False
    update_stats: bool = False  # train_step updates moving stats; gradients() must not
    generator: torch.Generator | None = None  # dropout masks, seeded per optimizer step


EVAL = Mode()


def activation_fn(kind: str | None, alpha: float = 0.2) -> Callable[[torch.Tensor], Any] | None:
    """The activation ``kind`` as a function; softmax is over channels (dim 1 in NCHW)."""
    if kind is None:
        return None
    if kind == "leaky_relu":
        return functools.partial(F.leaky_relu, negative_slope=alpha)
    if kind == "softmax":
        return functools.partial(torch.softmax, dim=1)
    return {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[kind]


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


class Conv2d(nn.Module):
    def __init__(self, layer: Any, row: LayerShape):
        super().__init__()
        kh, kw = layer.kernel
        self.weight = nn.Parameter(torch.zeros(layer.filters, row.input[2], kh, kw))
        self.bias = nn.Parameter(torch.zeros(layer.filters)) if layer.bias else None
        self.stride, self.dilation = layer.stride, layer.dilation
        self.pad, self.padding = split_pads(row.pads)
        self.act = activation_fn(layer.activation)

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        return y if self.act is None else self.act(y)


class MaxPool(nn.Module):
    """Padded cells are -inf, so they never win (SAME windows always hold a real cell)."""

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__()
        self.size, self.stride = layer.size, layer.strides
        self.pad, self.padding = split_pads(row.pads, (self.size[0] // 2, self.size[1] // 2))

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride, self.padding)


class AvgPool(nn.Module):
    """Sum over the zero-padded input divided by a precomputed count of real cells per window.

    Exact for any padding (asymmetric too), unlike count_include_pad, whose count is only
    right for padding torch itself applies.
    """

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__()
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


class Dense(nn.Module):
    """Kernel kept as canonical (inputs, units), so ``x @ kernel`` needs no transpose."""

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(row.input[0], layer.units))
        self.bias = nn.Parameter(torch.zeros(layer.units)) if layer.bias else None
        self.act = activation_fn(layer.activation)

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        y = torch.mm(x, self.kernel) if self.bias is None else torch.addmm(self.bias, x,
                                                                           self.kernel)
        return y if self.act is None else self.act(y)


class BatchNorm(nn.Module):
    """Keras semantics: biased batch variance for normalising and for the moving update."""

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__()
        channels = row.output[-1]
        self.momentum, self.epsilon = layer.momentum, layer.epsilon
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("moving_mean", torch.zeros(channels))
        self.register_buffer("moving_variance", torch.ones(channels))

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        x = x.float()  # statistics in float32 under mixed precision too
        shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
        if mode.training:
            var, mean = torch.var_mean(x, dim=(0, 2, 3) if x.dim() == 4 else 0, correction=0,
                                       keepdim=True)
            if mode.update_stats:
                m = self.momentum
                with torch.no_grad():
                    self.moving_mean.mul_(m).add_(mean.reshape(-1), alpha=1 - m)
                    self.moving_variance.mul_(m).add_(var.reshape(-1), alpha=1 - m)
        else:
            mean, var = self.moving_mean.view(shape), self.moving_variance.view(shape)
        scale = self.gamma.view(shape) * torch.rsqrt(var + self.epsilon)
        return (x - mean) * scale + self.beta.view(shape)


class Dropout(nn.Module):
    """Inverted dropout, training only; masks come from the mode's (per-step) generator."""

    def __init__(self, layer: Any, row: LayerShape):
        super().__init__()
        self.rate = layer.rate

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        if not mode.training or self.rate == 0:
            return x
        noise = torch.rand(x.shape, generator=mode.generator, device=x.device, dtype=x.dtype)
        return x * (noise >= self.rate).to(x.dtype).mul_(1.0 / (1.0 - self.rate))


class Flatten(nn.Module):
    def __init__(self, layer: Any, row: LayerShape):
        super().__init__()

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        return x.flatten(1)  # C, H, W order; see the module docstring


class Activation(nn.Module):
    def __init__(self, layer: Any, row: LayerShape):
        super().__init__()
        self.fn = activation_fn(layer.kind, getattr(layer, "alpha", 0.2))

    def forward(self, x: torch.Tensor, mode: Mode) -> torch.Tensor:
        return self.fn(x)


LAYERS: dict[str, type[nn.Module]] = {
    "conv2d": Conv2d, "maxpool": MaxPool, "avgpool": AvgPool, "dense": Dense,
    "batchnorm": BatchNorm, "dropout": Dropout, "flatten": Flatten,
}


@dataclass(frozen=True)
class Slot:
    """Where one canonical weight lives in the module, and how its layout differs.

    The tensor is looked up on every use: ``Module.to`` replaces buffers by new tensors.
    """

    module: nn.Module
    attr: str
    conv: bool = False  # OIHW here, HWIO canonical
    perm: np.ndarray | None = None  # rows: canonical = torch[perm]
    inverse: np.ndarray | None = field(default=None, repr=False)  # torch = canonical[inverse]

    @property
    def tensor(self) -> torch.Tensor:
        return getattr(self.module, self.attr)

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        if self.conv:
            return array.transpose(2, 3, 1, 0)
        return array if self.perm is None else array[self.perm]

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        if self.conv:
            return array.transpose(3, 2, 0, 1)
        return array if self.inverse is None else array[self.inverse]


def flatten_perm(shape: tuple[int, ...]) -> np.ndarray | None:
    """Canonical (H, W, C) flat index -> torch (C, H, W) flat index; None when identical."""
    h, w, c = shape
    if c == 1 or h * w == 1:
        return None
    return np.arange(h * w * c).reshape(c, h, w).transpose(1, 2, 0).ravel()


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
        table = infer_shapes(spec)
        self.layers = nn.ModuleDict()
        self.order: list[tuple[str, nn.Module]] = []
        self.slots: dict[str, Slot] = {}
        self.out_perm: dict[str, np.ndarray | None] = {}
        self.has_dropout = False
        perm: np.ndarray | None = None
        for layer, row in zip(spec.layers, table.rows, strict=True):
            module = LAYERS.get(layer.kind, Activation)(layer, row)
            self.layers[_module_key(row.name, self.layers)] = module
            self.order.append((row.name, module))
            if layer.kind == "flatten":
                perm = flatten_perm(row.input)
            rows = {} if perm is None else {"perm": perm, "inverse": np.argsort(perm)}
            if layer.kind == "conv2d":
                self._slot(row.name, "kernel", module, "weight", conv=True)
                self._slot(row.name, "bias", module, "bias")
            elif layer.kind == "dense":
                self._slot(row.name, "kernel", module, "kernel", **rows)
                self._slot(row.name, "bias", module, "bias")
                perm = None
            elif layer.kind == "batchnorm":
                for name in ("gamma", "beta", "moving_mean", "moving_variance"):
                    self._slot(row.name, name, module, name, **rows)
            self.has_dropout |= layer.kind == "dropout" and layer.rate > 0
            self.out_perm[row.name] = perm
        # A net may end flat but before any dense (e.g. conv -> flatten): reorder the logits.
        self.register_buffer("final_perm", None if perm is None else torch.from_numpy(perm),
                             persistent=False)
        expected = weight_shapes(spec)
        assert list(self.slots) == list(expected), (list(self.slots), list(expected))

    def _slot(self, layer: str, name: str, module: nn.Module, attr: str, **layout: Any) -> None:
        if getattr(module, attr) is not None:  # absent when bias: false
            self.slots[f"{layer}/{name}"] = Slot(module, attr, **layout)

    def forward(self, x: torch.Tensor, mode: Mode = EVAL,
                collect: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        for name, module in self.order:
            x = module(x, mode)
            if collect is not None:
                collect[name] = x
        return x if self.final_perm is None else x.index_select(1, self.final_perm)
