"""What the variant benchmarks (``tf_variants.py``, ``torch_variants.py``) share: the data,
the convspec model as a step function, interleaved timing with the load recorded, and the
cross-backend tests' error measure."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from protocol import SPEC, Data, Meter  # noqa: E402

import convspec  # noqa: E402

NAMES = [f"{layer}/{slot}" for layer in ("conv1", "conv2", "fc1", "fc2")
         for slot in ("kernel", "bias")]


def load_data(steps: int, seed: int = 1, random: bool = False) -> Data:
    """Fashion-MNIST minibatches of 64; ``random``: the cross-backend tests' data instead
    (5 batches of 8 uniform random images, cycled; ``tests/test_cross_backend.py``)."""
    weights = convspec.init_weights(convspec.load_spec(SPEC))
    if random:
        rng = np.random.default_rng(0)
        parts = [(rng.random((8, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 8))
                 for _ in range(5)]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts]).astype(np.int64)
        rows = np.stack([np.arange(8) + 8 * (i % 5) for i in range(steps)])
        return Data(x, y, x, y, rows, weights)
    ds = convspec.load_dataset("fashion-mnist", log=lambda m: None)
    rng = np.random.default_rng(seed)
    rows = np.stack([rng.choice(len(ds.train), 64, replace=False) for _ in range(steps)])
    return Data(ds.train.images, ds.train.labels.astype(np.int64), ds.test.images,
                ds.test.labels.astype(np.int64), rows, weights)


class Backend:
    def __init__(self, data: Data, backend: str = "tensorflow"):
        self.data = data
        self.model = convspec.compile(convspec.load_spec(SPEC), backend=backend,
                                      weights=data.weights)

    def __call__(self, i: int) -> None:
        rows = self.data.batches[i]
        self.model.train_step(self.data.train_x[rows], self.data.train_y[rows])

    def weights(self) -> dict[str, np.ndarray]:
        return self.model.get_weights()

    def slots(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.model.optimizer_state().items() if k != "step"}


Samples = dict[str, tuple[list[float], list[float], list[float]]]


def timed_rounds(runs: dict[str, object], steps: int, rounds: int) -> Samples:
    """Interleaved rounds: variant -> (wall ms/step, other load in cores, this process's CPU
    ms/step) of each round. With one thread the CPU time is the robust measure on a busy
    machine: time spent waiting for a core is not in it."""
    for run in runs.values():  # warm-up: tracing, allocator, thread pools
        for i in range(5):
            run(i)
    samples: Samples = {k: ([], [], []) for k in runs}
    meter = Meter()
    for _ in range(rounds):
        for name, run in runs.items():
            meter.start()
            for i in range(steps):
                run(i)
            load = meter.stop()
            samples[name][0].append(load["seconds"] / steps * 1e3)
            samples[name][1].append(load["other_load"])
            samples[name][2].append(load["own_cores"] * load["seconds"] / steps * 1e3)
    return samples


def print_rounds(samples: Samples, base: str | None, disturbed: float, batch: int = 64) -> None:
    """Wall time: median of all rounds, best round, median of the undisturbed ones (other load
    <= ``disturbed``); CPU time: median; ratios to ``base``."""
    quiet = {k: [m for m, load in zip(v[0], v[1]) if load <= disturbed]
             for k, v in samples.items()}
    ref = [statistics.median(samples[base][0]), min(samples[base][0]),
           statistics.median(samples[base][2])] if base in samples else None
    print("| variant | wall ms/step (median) | best round | undisturbed median (rounds) | "
          "other load (median, cores) | CPU ms/step (median) | images/s (median wall) | "
          f"{base} / variant (wall median; best; CPU) |\n|---|---|---|---|---|---|---|---|")
    for name, (ms, loads, cpu) in samples.items():
        mine = [statistics.median(ms), min(ms), statistics.median(cpu)]
        calm = f"{statistics.median(quiet[name]):.2f} ({len(quiet[name])})" if quiet[name] \
            else "-"
        ratio = "; ".join(f"{r / m:.2f}" for r, m in zip(ref, mine)) if ref else "-"
        print(f"| {name} | {mine[0]:.2f} | {mine[1]:.2f} | {calm} | "
              f"{statistics.median(loads):.2f} | {mine[2]:.2f} | {batch * 1e3 / mine[0]:,.0f} | "
              f"{ratio} |", flush=True)


def rel_errors(a: dict, b: dict) -> float:
    """max over tensors of max|a - b| / max|a| (the cross-backend tests' measure)."""
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max())
               / max(float(np.abs(a[k]).max()), 1e-12) for k in a)


