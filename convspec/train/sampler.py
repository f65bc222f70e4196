"""The order in which training images are visited: seeded, resumable, the same everywhere."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConvspecError

if TYPE_CHECKING:
    from ..specification import Spec


class BatchSampler:
    """Shuffled minibatches like the tutorial's ``next_batch``: a new permutation per epoch,
    and a batch that crosses an epoch end takes the rest of one and the start of the next.

    ``next()`` returns an int64 index array of ``batch_size``; ``state()`` / ``restore()``
    capture and replay the exact future order (for checkpoints).
    """

    def __init__(self, size: int, batch_size: int, seed: int):
        if size <= 0:
            raise ConvspecError("the training set is empty")
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
        self.order = np.asarray(state["order"], dtype=np.int64)
        self.pos, self.epoch = int(state["pos"]), int(state["epoch"])
        self.rng.bit_generator.state = state["rng"]


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
