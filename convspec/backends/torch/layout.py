"""Canonical <-> torch layouts of the weights, exact (bit-preserving) both ways.

* conv kernels: canonical HWIO <-> torch OIHW;
* flat features: canonical H, W, C order <-> torch's C, H, W order (NCHW flattened), applied
  to the rows of the tensors that follow a flatten (``model.Op.flat_order``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

FlatOrder = np.ndarray | None  # canonical flat index -> torch flat index; None: the same
HWIO_TO_OIHW = (3, 2, 0, 1)


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
            return array.transpose(HWIO_TO_OIHW)
        return array if self.inverse is None else array[self.inverse]


def flatten_perm(shape: tuple[int, ...]) -> FlatOrder:
    """Canonical (H, W, C) flat index -> torch (C, H, W) flat index; None when identical."""
    h, w, c = shape
    if c == 1 or h * w == 1:
        return None
    return np.arange(h * w * c).reshape(c, h, w).transpose(1, 2, 0).ravel()
