"""convspec as a user calls it: ``convspec.compile(spec, backend=...)``, then
``model.train_step(images, labels)`` per minibatch (NumPy in, nothing fetched) and
``model.predict(test_images, batch_size=256)`` for the test set. ``specs/mnist.yaml`` is the
tutorial network; threads are convspec's own choice (``convspec.threads``) unless the worker
is told otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from protocol import ROOT, SPEC, Data

sys.path.insert(0, str(ROOT))


class Convspec:
    def __init__(self, data: Data, backend: str):
        import convspec
        from convspec.threads import choose_threads

        self.data = data
        self.model = convspec.compile(convspec.load_spec(SPEC), backend=backend,
                                      weights=data.weights)
        choice = choose_threads()  # what compile applied (measured once per process)
        used = choice.threads if backend == "torch" else choice.cores
        self.threads = f"{used} ({choice.reason})"

    def train(self, steps: int, on_step_end: Callable[[int], None]) -> None:
        x, y, model = self.data.train_x, self.data.train_y, self.model
        for i in range(steps):
            idx = self.data.batches[i]
            model.train_step(x[idx], y[idx])
            on_step_end(i)

    def evaluate(self) -> float:
        logits = self.model.predict(self.data.test_x, batch_size=256)
        return float(np.mean(logits.argmax(1) == self.data.test_y))


def build_torch(data: Data) -> Convspec:
    return Convspec(data, "torch")


def build_tensorflow(data: Data) -> Convspec:
    return Convspec(data, "tensorflow")
