"""What reading every step's loss and accuracy costs (the Trainer's window means need it).

    python benchmarks/fetch_cost.py [torch|tensorflow] [--rounds 8] [--block 50] [--device cpu]

Blocks of steps with and without ``fetch=True`` alternate on the tutorial network and a
fixed batch of 64, so both see the same load on a shared machine; each block ends with one
prediction, so work queued on a device is finished inside the block that queued it; medians
of the blocks are compared. On a GPU a fetch makes every step wait for the device (a sync
that stops steps from overlapping): run it there with ``--device cuda`` before trusting the
CPU figure for a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import convspec

SPEC = Path(__file__).resolve().parents[1] / "specs" / "mnist.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", nargs="?", default="torch")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--block", type=int, default=50, help="steps per timed block")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.random((64, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, 64)
    model = convspec.compile(convspec.load_spec(SPEC), backend=args.backend, device=args.device)
    for _ in range(20):
        model.train_step(images, labels, fetch=True)
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(2 * args.rounds):
        fetch = bool(i % 2)
        began = time.perf_counter()
        for _ in range(args.block):
            model.train_step(images, labels, fetch=fetch)
        model.predict(images[:1])  # waits for the block's queued work
        times[fetch].append((time.perf_counter() - began) / args.block)
    without, with_fetch = (statistics.median(times[f]) * 1e3 for f in (False, True))
    print(f"{args.backend} on {model.device}: {without:.2f} ms/step without fetch, "
          f"{with_fetch:.2f} ms/step with fetch ({100 * (with_fetch / without - 1):+.1f}%)")


if __name__ == "__main__":
    main()
