"""Canonical <-> torch layouts, exact (bit-preserving) both ways.

TensorFlow speaks convspec's canonical layout; torch runs NCHW, so (and only so) this backend
has a layout module:

* conv kernels: canonical HWIO <-> torch OIHW (a grouped kernel's I is the group's share); a
  depthwise kernel, canonical ``(kh, kw, C, m)``, is the grouped HWIO kernel
  ``(kh, kw, 1, C * m)`` (``KERNEL_VIEWS``), torch ``(C * m, 1, kh, kw)``;
* flat features: torch flattens NCHW in C, H, W order, the canonical order is H, W, C.
  Instead of permuting activations every step, the tensors that meet flat features after a
  flatten are stored with their rows permuted (``FLAT_ORDERS``: the rows of a dense kernel,
  every parameter of a batch norm in between), so the forward pass never reorders anything.
  Each layer's output has a flat order (``None``: canonical); one flatten may feed several
  layers, a concat of flat vectors joins its inputs' orders, and only an add of flat vectors
  in different orders brings them back to canonical order first (``Network`` does, with
  ``index_select``); ``Network.final_perm`` reorders logits that are still flat features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...shapes import LayerShape

FlatOrder = np.ndarray | None  # canonical flat index -> torch flat index; None: the same
Orders = tuple[FlatOrder, ...]
HWIO_TO_OIHW = (3, 2, 0, 1)

# Kind -> the HWIO shape its canonical 4-D kernel is a view of (kinds not listed: HWIO itself).
KERNEL_VIEWS: dict[str, Callable[[tuple[int, ...]], tuple[int, ...]]] = {
    "depthwise_conv2d": lambda shape: (shape[0], shape[1], 1, shape[2] * shape[3]),
}


@dataclass(frozen=True)
class Layout:
    """How one canonical weight is stored in torch."""

    conv: bool = False  # OIHW here, HWIO canonical
    view: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # (canonical, HWIO) shapes
    perm: np.ndarray | None = None  # rows: canonical = torch[perm]
    inverse: np.ndarray | None = field(default=None, repr=False)  # torch = canonical[inverse]

    def torch_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.view is not None:
            shape = self.view[1]
        return tuple(shape[axis] for axis in HWIO_TO_OIHW) if self.conv else shape

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        if self.conv:
            hwio = array.transpose(2, 3, 1, 0)
            return hwio if self.view is None else hwio.reshape(self.view[0])
        return array if self.perm is None else array[self.perm]

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        if self.conv:
            hwio = array if self.view is None else array.reshape(self.view[1])
            return hwio.transpose(HWIO_TO_OIHW)
        return array if self.inverse is None else array[self.inverse]


def weight_layout(kind: str, shape: tuple[int, ...], order: FlatOrder) -> Layout:
    """The layout of a weight of canonical ``shape`` of a ``kind`` layer whose rows follow
    ``order``: every 4-D weight is a conv kernel (``KERNEL_VIEWS`` says which are views)."""
    if len(shape) == 4:
        view = KERNEL_VIEWS.get(kind)
        return Layout(conv=True, view=None if view is None else (shape, view(shape)))
    return Layout() if order is None else Layout(perm=order, inverse=np.argsort(order))


def flatten_perm(shape: tuple[int, ...]) -> FlatOrder:
    """Canonical (H, W, C) flat index -> torch (C, H, W) flat index; None when identical."""
    h, w, c = shape
    if c == 1 or h * w == 1:
        return None
    return np.arange(h * w * c).reshape(c, h, w).transpose(1, 2, 0).ravel()


def same_order(a: FlatOrder, b: FlatOrder) -> bool:
    """Whether two flat orders are the same map."""
    return a is b or (a is not None and b is not None and np.array_equal(a, b))


def _concat(row: LayerShape, orders: Orders) -> FlatOrder:
    """The order of flat inputs joined end to end: input ``i``'s features follow its own
    order, shifted by the sizes before it (4-D inputs: channels join, no flat order)."""
    if len(row.output) != 1 or all(order is None for order in orders):
        return None
    sizes = [shape[0] for shape in row.input_shapes]
    starts = np.cumsum([0, *sizes[:-1]])
    return np.concatenate([start + (np.arange(size) if order is None else order)
                           for start, size, order in zip(starts, sizes, orders, strict=True)])


def _add(row: LayerShape, orders: Orders) -> tuple[Orders, list[FlatOrder], FlatOrder]:
    """Inputs in one order are added as they are; otherwise each is taken in canonical order."""
    if all(same_order(order, orders[0]) for order in orders):
        return orders, [], orders[0]
    return (None,) * len(orders), [], None


# Given a layer's row and the flat orders of its inputs: the orders it takes its inputs in
# (the network brings an input in another order to canonical order), the order each weight's
# rows are stored in, and the flat order of its output. Kinds not listed take one input, hold
# nothing in flat order and pass its order through (activations, dropout, identity ...).
FlatOrderRule = Callable[[LayerShape, Orders], tuple[Orders, list[FlatOrder], FlatOrder]]
FLAT_ORDERS: dict[str, FlatOrderRule] = {
    "flatten": lambda row, orders: (orders, [], flatten_perm(row.input)),
    # rows: input features
    "dense": lambda row, orders: (orders, [orders[0], None][:len(row.slots)], None),
    "batchnorm": lambda row, orders: (orders, [orders[0]] * len(row.slots), orders[0]),
    "concat": lambda row, orders: (orders, [], _concat(row, orders)),
    "add": _add,
}


def flat_orders(kind: str, row: LayerShape, orders: Orders
                ) -> tuple[Orders, list[FlatOrder], FlatOrder]:
    """``FLAT_ORDERS``' rule for ``kind``, or pass-through of the one input's order."""
    rule = FLAT_ORDERS.get(kind)
    if rule is None:
        return orders, [None] * len(row.slots), orders[0]
    return rule(row, orders)
