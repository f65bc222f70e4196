"""The order in which training images are visited: seeded, resumable, the same everywhere."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConvspecError, DataError

if TYPE_CHECKING:
    from ..specification import Spec


def check_batch_size(spec: Spec, train_size: int) -> None:
    """Refuse (``DataError``) a ``train.batch_size`` larger than the training set: a batch
    would hold some images twice (convspec does not clamp it silently)."""
    if spec.train.batch_size > train_size:
        raise DataError(f"train.batch_size {spec.train.batch_size:,} is larger than the "
                        f"training set ({train_size:,} images); use at most {train_size:,} "
                        f"(--batch-size {train_size}) or more training data")


class BatchSampler:
    """Shuffled minibatches like the tutorial's ``next_batch``: a new permutation per epoch,
    and a batch that crosses an epoch end takes the rest of one and the start of the next.

    ``next()`` returns an int64 index array of ``batch_size``; ``state()`` / ``restore()``
    capture and replay the exact future order (for checkpoints).
    """

    def __init__(self, size: int, batch_size: int, seed: int):
        if size <= 0:
            raise ConvspecError("the training set is empty")
        if not 0 < batch_size <= size:
            raise DataError(f"batch size {batch_size:,} does not fit a training set of "
                            f"{size:,} images (1 to {size:,})")
        self.size, self.batch_size = size, batch_size
        self.rng = np.random.default_rng([seed, 0x5A3])
        self.order = self.rng.permutation(size)
        self.pos = 0
        self.epoch = 0

    def next(self) -> np.ndarray:
        parts, need = [], self.batch_size
        while need:
            take = min(need, self.size - self.pos)
            parts.append(self.order[self.pos:self.pos + take])
            self.pos += take
            need -= take
            if self.pos == self.size:
                self.order = self.rng.permutation(self.size)
                self.pos, self.epoch = 0, self.epoch + 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def state(self) -> dict[str, Any]:
        return {"order": self.order, "pos": self.pos, "epoch": self.epoch,
                "rng": self.rng.bit_generator.state}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state()``'s result; ``ValueError`` (changing nothing) when it does
        not fit this sampler: the order must be a permutation of the training set's
        indices, the position within it, the epoch a count, the random state the
        generator's own."""
        order = np.asarray(state.get("order"))
        pos, epoch = state.get("pos"), state.get("epoch")
        if order.shape != (self.size,) or order.dtype.kind not in "iu":
            raise ValueError(f"its data order has {order.size:,} {order.dtype} entries; the "
                             f"training set has {self.size:,} images")
        order = order.astype(np.int64)
        seen = np.zeros(self.size, dtype=bool)
        inside = (order >= 0) & (order < self.size)
        seen[order[inside]] = True
        if not inside.all() or not seen.all():
            raise ValueError(f"its data order is not a permutation of the {self.size:,} "
                             f"training images (indices from {order.min()} to {order.max()})")
        for name, value, top in (("position", pos, self.size - 1), ("epoch", epoch, 2**62)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
                raise ValueError(f"its data {name} is {value!r}, not an integer in [0, {top:,}]")
        rng = np.random.default_rng(0)
        try:
            rng.bit_generator.state = state.get("rng")
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise ValueError(f"its random state is not a {type(rng.bit_generator).__name__} "
                             f"state ({exc})") from None
        self.order, self.pos, self.epoch, self.rng = order, pos, epoch, rng


def steps_per_epoch(spec: Spec, train_size: int) -> int:
    """Optimizer steps in one epoch: ``ceil(train_size / batch_size)``."""
    return math.ceil(train_size / spec.train.batch_size)


def total_iterations(spec: Spec, train_size: int) -> int:
    """The run's length in optimizer steps (epochs converted with ``steps_per_epoch``)."""
    if spec.train.iterations is not None:
        return spec.train.iterations
    return int(spec.train.epochs) * steps_per_epoch(spec, train_size)


def validation_interval(spec: Spec, train_size: int) -> int:
    """Steps between two validations: ``train.validate_every``, ``epoch`` meaning
    ``steps_per_epoch``."""
    every = spec.train.validate_every
    return steps_per_epoch(spec, train_size) if every == "epoch" else int(every)
