"""Dropout masks in PyTorch: ``convspec.dropout``'s counter hash, so every backend draws
the same bits for the same step, layer and element (see ``convspec.dropout``).

``convspec.dropout``'s counter hash in int64 (torch's uint32 lacks the ops). The
optimizer step lives on the host, so each layer's key is ``convspec.dropout.key`` itself
(``Network.dropout_keys``); only the per-element hash is written here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ... import dropout

if TYPE_CHECKING:
    from .ops import Call


def _signed(factor: int) -> int:
    """The factor congruent to ``factor`` mod 2**32 in [-2**31, 2**31): its product with a
    uint32 fits in int64 (no overflow), and the low 32 bits are the same."""
    return factor - (1 << 32) if factor >> 31 else factor


_M1, _M2 = _signed(dropout.M1), _signed(dropout.M2)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 (see ``convspec.dropout.mix``) of uint32 values held in int64."""
    x = ((x ^ (x >> 16)) * _M1) & dropout.MASK32
    x = ((x ^ (x >> 15)) * _M2) & dropout.MASK32
    return x ^ (x >> 16)


def dropout_positions(x: torch.Tensor, first_row: int,
                      order: torch.Tensor | None) -> torch.Tensor:
    """The canonical index (``convspec.dropout``'s ``i``) of every element of ``x``: NCHW
    elements numbered in NHWC order, flat features in canonical order (``order``)."""
    n, per_row = x.shape[0], math.prod(x.shape[1:])
    index = torch.arange(first_row * per_row, (first_row + n) * per_row, device=x.device)
    if x.dim() == 4:
        _, c, h, w = x.shape
        return index.view(n, h, w, c).permute(0, 3, 1, 2).contiguous()
    index = index.view(n, per_row)
    return index if order is None else index.index_select(1, order)


def dropout_mask(call: Call, rate: float, x: torch.Tensor) -> torch.Tensor:
    """The multiplier of ``x`` (0 or 1 / (1 - rate), in x's type): ``convspec.dropout``'s
    masks, the same bits as every other backend."""
    if call.mode.keys is None:
        raise ValueError("dropout in training mode needs the layers' keys")
    key = call.mode.keys[call.index]
    positions = dropout_positions(x, call.mode.first_row, call.order) & dropout.MASK32
    keep = (_mix(_mix(positions) ^ key) >> dropout.SHIFT) >= dropout.threshold(rate)
    return keep.to(x.dtype).mul_(dropout.scale(rate))
