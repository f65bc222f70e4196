"""Canonical <-> torch layouts, exact (bit-preserving) both ways.

TensorFlow speaks convspec's canonical layout; torch runs NCHW, so (and only so) this backend
has a layout module:

* conv kernels (the 4-D weights): canonical HWIO <-> torch OIHW;
* flat features: torch flattens NCHW in C, H, W order, the canonical order is H, W, C.
  Instead of permuting activations every step, the tensors that meet flat features after a
  flatten are stored with their rows permuted (``FLAT_ORDERS``: the rows of the first dense
  kernel, every parameter of a batch norm in between), so the forward pass never reorders
  anything; ``Network.final_perm`` reorders logits that are still flat features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...shapes import LayerShape

FlatOrder = np.ndarray | None  # canonical flat index -> torch flat index; None: the same
HWIO_TO_OIHW = (3, 2, 0, 1)


@dataclass(frozen=True)
class Layout:
    """How one canonical weight is stored in torch."""

    conv: bool = False  # OIHW here, HWIO canonical
    perm: np.ndarray | None = None  # rows: canonical = torch[perm]
    inverse: np.ndarray | None = field(default=None, repr=False)  # torch = canonical[inverse]

    def torch_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape[axis] for axis in HWIO_TO_OIHW) if self.conv else shape

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        if self.conv:
            return array.transpose(2, 3, 1, 0)
        return array if self.perm is None else array[self.perm]

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        if self.conv:
            return array.transpose(HWIO_TO_OIHW)
        return array if self.inverse is None else array[self.inverse]


def weight_layout(shape: tuple[int, ...], order: FlatOrder) -> Layout:
    """The layout of a weight of canonical ``shape`` whose rows follow ``order``: every 4-D
    weight is a conv kernel."""
    if len(shape) == 4:
        return Layout(conv=True)
    return Layout() if order is None else Layout(perm=order, inverse=np.argsort(order))


def flatten_perm(shape: tuple[int, ...]) -> FlatOrder:
    """Canonical (H, W, C) flat index -> torch (C, H, W) flat index; None when identical."""
    h, w, c = shape
    if c == 1 or h * w == 1:
        return None
    return np.arange(h * w * c).reshape(c, h, w).transpose(1, 2, 0).ravel()


# Given a layer's row and the flat order of its input: the order each weight's rows are stored
# in, and the flat order of its output. Kinds not listed hold nothing in flat order and pass
# the order through (activations, dropout).
FlatOrderRule = Callable[[LayerShape, FlatOrder], tuple[list[FlatOrder], FlatOrder]]
FLAT_ORDERS: dict[str, FlatOrderRule] = {
    "flatten": lambda row, order: ([], flatten_perm(row.input)),
    "dense": lambda row, order: ([order, None][:len(row.slots)], None),  # rows: input features
    "batchnorm": lambda row, order: ([order] * len(row.slots), order),  # per feature
}


def flat_orders(kind: str, row: LayerShape, order: FlatOrder) -> tuple[list[FlatOrder],
                                                                        FlatOrder]:
    """``FLAT_ORDERS``' rule for ``kind``, or pass-through."""
    rule = FLAT_ORDERS.get(kind)
    return ([None] * len(row.slots), order) if rule is None else rule(row, order)
