"""Dropout masks: one counter-based definition that every backend computes bit for bit.

A mask is a pure function of (train seed, optimizer step, layer index, element position), so
a spec with dropout trains to the same weights whichever backend trains it, with or without
XLA / torch.compile, on any device, resumed or not, and on any number of data-parallel
replicas. No random-number generator is involved: each element's bits are a hash of its
position (a counter), the scheme of counter-based generators such as Philox (Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011), with ``lowbias32`` (Chris
Wellons' integer-hash prospector, 2018: a bijective uint32 hash with full avalanche) as the
mixing function, which every framework can write with 32-bit integer ops.

For the update that takes the optimizer from ``step`` to ``step + 1`` (``gradients(...,
training=True)`` uses the masks of the coming update), dropout layer number ``layer_index``
(its position in ``spec.layers``, counted from 0), with ``rate`` r:

* ``key = mix(mix(crc32("<seed>/<layer_index>") ^ (step mod 2**32)) ^ (step >> 32))``;
* element ``i`` (its row-major index into the whole canonical (N, ...) input: NHWC, or flat
  in H, W, C order) has ``bits(i) = mix(mix(i mod 2**32) ^ key) >> 8``, a uniform 24-bit
  integer;
* it is kept when ``bits(i) >= ceil(r * 2**24)`` (probability 1 - r up to 2**-24), and a kept
  element is multiplied by ``1 / (1 - r)`` (inverted dropout), a dropped one by 0.

A data-parallel replica that holds rows ``first_row, first_row + 1, ...`` of the global batch
numbers its elements from ``first_row * (elements per row)``, so N replicas draw exactly the
masks of one device with the whole batch. A backend whose tensors are laid out differently
(torch's NCHW) computes ``i`` from each element's canonical position.

This module is the definition: ``key`` in plain Python and ``keep_mask`` / ``multiplier`` in
NumPy, the oracle the backends' own forms are tested against (``tests/test_dropout.py``).
"""

from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

M1, M2 = 0x7FEB352D, 0x846CA68B  # lowbias32's multipliers
MASK32 = 0xFFFFFFFF
BITS = 24  # uniform bits per element compared with the threshold
SHIFT = 32 - BITS  # bits(i) = mix(...) >> SHIFT


def mix(x: int) -> int:
    """lowbias32 of one uint32 (a Python int in [0, 2**32))."""
    x ^= x >> 16
    x = (x * M1) & MASK32
    x ^= x >> 15
    x = (x * M2) & MASK32
    return x ^ (x >> 16)


def layer_key(seed: int, layer_index: int) -> int:
    """The uint32 that names one dropout layer of one run: crc32 of ``"<seed>/<index>"``."""
    return zlib.crc32(f"{seed}/{layer_index}".encode())


def key(seed: int, step: int, layer_index: int) -> int:
    """The uint32 key of one dropout layer at one optimizer step (``step`` >= 0, < 2**64)."""
    return mix(mix(layer_key(seed, layer_index) ^ (step & MASK32)) ^ ((step >> 32) & MASK32))


def threshold(rate: float) -> int:
    """Elements whose 24 bits are at least this are kept: ``ceil(rate * 2**24)``."""
    return math.ceil(rate * (1 << BITS))


def scale(rate: float) -> float:
    """The factor of a kept element, ``1 / (1 - rate)`` (rounded to the compute type)."""
    return 1.0 / (1.0 - rate)


def _mix_array(x: np.ndarray) -> np.ndarray:
    """lowbias32 elementwise on a uint64 array of uint32 values."""
    x = x ^ (x >> 16)
    x = (x * M1) & MASK32
    x = x ^ (x >> 15)
    x = (x * M2) & MASK32
    return x ^ (x >> 16)


def keep_mask(shape: tuple[int, ...], rate: float, seed: int, step: int, layer_index: int,
              first_row: int = 0) -> np.ndarray:
    """Boolean (N, ...) array: which elements of a canonical-layout input of ``shape`` are
    kept, for rows ``first_row ... first_row + N - 1`` of the global batch."""
    import numpy as np

    per_row = math.prod(shape[1:])
    start = first_row * per_row
    index = (np.arange(start, start + math.prod(shape), dtype=np.uint64) & MASK32)
    bits = _mix_array(_mix_array(index) ^ np.uint64(key(seed, step, layer_index))) >> SHIFT
    return (bits >= threshold(rate)).reshape(shape)


def multiplier(shape: tuple[int, ...], rate: float, seed: int, step: int, layer_index: int,
               first_row: int = 0) -> np.ndarray:
    """Float32 (N, ...) array of 0 or ``1 / (1 - rate)``: what the input is multiplied by."""
    import numpy as np

    keep = keep_mask(shape, rate, seed, step, layer_index, first_row)
    return keep.astype(np.float32) * np.float32(scale(rate))

