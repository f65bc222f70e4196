"""From stored pixels to the network's input, defined once and recorded with every run.

``x = pixel / 255`` for uint8 data (the tutorial's scaling to [0, 1]; float data is taken as
already in [0, 1]), then, when ``train.normalize`` asks for it, ``x = (x - mean) / std`` per
channel, in float32. The mean and std are given, or computed once on the training split (in
float64, population std) and recorded in the run directory, so ``evaluate``, ``predict``, a
resumed run and an exported model's documented input all use the same numbers.

``ImageArray`` applies it lazily: images stay stored as uint8 (possibly a memory-mapped file
bigger than memory) and each batch is gathered and converted when indexed, exactly as the
whole array would be converted at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError

_SCALES = {"1/255": np.float32(255), "1": None}


@dataclass(frozen=True)
class Preprocessing:
    """``scale`` ('1/255' for uint8 pixels, '1' for float pixels in [0, 1]), then per-channel
    ``mean`` / ``std`` (None: no normalisation)."""

    scale: str = "1/255"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.scale not in _SCALES:
            raise DataError(f"preprocessing scale {self.scale!r}: expected 1/255 or 1")
        if (self.mean is None) != (self.std is None) or (
                self.mean is not None and len(self.mean) != len(self.std or ())):
            raise DataError("preprocessing needs both mean and std, one value per channel")

    def apply(self, stored: np.ndarray) -> np.ndarray:
        """Stored images (..., C) to float32 network input (a new array)."""
        divisor = _SCALES[self.scale]
        if divisor is not None:
            x = np.divide(stored, divisor, dtype=np.float32)
        else:
            x = np.array(stored, dtype=np.float32)
        if self.mean is not None:
            x -= np.asarray(self.mean, np.float32)
            x /= np.asarray(self.std, np.float32)
        return x

    def without_normalization(self) -> Preprocessing:
        return Preprocessing(self.scale)

    def formula(self) -> str:
        """The input an exported model expects, in words."""
        base = "pixel / 255" if self.scale == "1/255" else "pixel (float, 0-1)"
        if self.mean is None:
            return f"x = {base}"
        return (f"x = ({base} - mean) / std per channel, mean {list(self.mean)}, "
                f"std {list(self.std or ())}")

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        mean, std = data.get("mean"), data.get("std")
        return cls(str(data.get("scale", "1/255")),
                   None if mean is None else tuple(float(v) for v in mean),
                   None if std is None else tuple(float(v) for v in std))


class ImageArray:
    """N images read lazily: ``stored`` (N', H, W, C) uint8 or float32, optionally through a
    row index ``rows`` (N,), converted by ``preprocessing`` whenever indexed. Behaves like a
    float32 (N, H, W, C) array for indexing, ``len``, ``shape`` and ``np.asarray``."""

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, stored: np.ndarray, rows: np.ndarray | None = None,
                 preprocessing: Preprocessing | None = None):
        self.stored, self.rows = stored, rows
        self.preprocessing = preprocessing or Preprocessing(
            "1/255" if stored.dtype == np.uint8 else "1")

    def __len__(self) -> int:
        return len(self.stored) if self.rows is None else len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.stored.shape[1:])

    def stored_rows(self, key: Any) -> np.ndarray:
        """The stored (unconverted) values at ``key`` (int, slice or index array on axis 0)."""
        if self.rows is not None:
            key = self.rows[key]
        return self.stored[key]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):  # images[i, :, :, 0]: convert whole images, then select
            batch = self[key[0]]
            one = isinstance(key[0], (int, np.integer))
            return batch[key[1:]] if one else batch[(slice(None), *key[1:])]
        return self.preprocessing.apply(self.stored_rows(key))

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """Consecutive float32 batches of at most ``size`` images."""
        for start in range(0, len(self), size):
            yield self[start:start + size]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, np.float32)
        for start in range(0, len(self), 8192):
            out[start:start + 8192] = self[start:start + 8192]
        return out if dtype is None else out.astype(dtype)

    def with_preprocessing(self, preprocessing: Preprocessing) -> ImageArray:
        return ImageArray(self.stored, self.rows, preprocessing)


def channel_stats(images: ImageArray, chunk: int = 8192) -> tuple[tuple[float, ...],
                                                                  tuple[float, ...]]:
    """Per-channel mean and population std of ``images`` after scaling only (float64 sums)."""
    scaled = images.with_preprocessing(images.preprocessing.without_normalization())
    channels = images.shape[-1]
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for batch in scaled.chunks(chunk):
        flat = batch.reshape(-1, channels).astype(np.float64)
        total += flat.sum(axis=0)
        squares += np.square(flat).sum(axis=0)
        count += len(flat)
    if count == 0:
        raise DataError("train.normalize: per_channel needs training images; the training "
                        "split is empty")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    if (std == 0).any():
        raise DataError(f"train.normalize: per_channel: channel(s) "
                        f"{np.flatnonzero(std == 0).tolist()} are constant in the training "
                        "images (std 0); give mean and std instead")
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
