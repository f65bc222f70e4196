"""Train-step time of one spec under two checkouts of convspec, interleaved.

    python benchmarks/versions.py --before /tmp/convspec-main [--after .] [--spec specs/mnist.yaml]

Each (checkout, backend) pair runs in its own long-lived worker process (``PYTHONPATH`` set to
its checkout); the parent tells the workers in turn to time a block of training steps, so
the versions alternate under the same machine conditions, warm, and only one computes at a
time. Prints the median milliseconds per step of each, and their ratio (after / before).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import sys, time
import numpy as np
import convspec
spec_path, backend, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = convspec.compile(convspec.load_spec(spec_path), backend=backend)
spec = model.spec
rng = np.random.default_rng(0)
x = rng.random((batch, spec.input.height, spec.input.width, spec.input.channels),
               dtype=np.float32)
y = rng.integers(0, spec.classes, batch)
for _ in range(10):  # warm-up: tracing, allocator, thread pools
    model.train_step(x, y)
model.train_step(x, y, fetch=True)
print(convspec.__file__, flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    for _ in range(steps):
        model.train_step(x, y)
    model.train_step(x, y, fetch=True)  # waits for the device
    print((time.perf_counter() - start) / (steps + 1), flush=True)
"""


def _worker(checkout: Path, args: argparse.Namespace, backend: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(args.spec.resolve()), backend, str(args.batch),
         str(args.steps)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        cwd=checkout)  # python -c puts the working directory first on sys.path
    assert process.stdout is not None
    loaded = process.stdout.readline().strip()  # ready; which convspec it imported
    if not loaded.startswith(str(checkout.resolve())):
        raise SystemExit(f"worker for {checkout} imported {loaded!r}")
    return process


def _block(process: subprocess.Popen[str]) -> float:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("go\n")
    process.stdin.flush()
    return float(process.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=ROOT)
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "mnist.yaml")
    parser.add_argument("--backend", action="append", choices=["torch", "tensorflow"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"{args.spec.name}, batch {args.batch}, {args.rounds} rounds of {args.steps + 1} "
          f"steps, before / after interleaved; load {os.getloadavg()[0]:.2f}")
    print("| backend | before ms/step | after ms/step | after / before |\n|---|---|---|---|")
    for backend in args.backend or ["torch", "tensorflow"]:
        workers = {"before": _worker(args.before, args, backend),
                   "after": _worker(args.after, args, backend)}
        samples: dict[str, list[float]] = {name: [] for name in workers}
        for round_ in range(args.rounds):
            order = list(workers) if round_ % 2 == 0 else list(workers)[::-1]
            for name in order:
                time.sleep(0.2)  # let the other worker's thread pool go idle
                samples[name].append(_block(workers[name]))
        for process in workers.values():
            process.communicate("")
        before, after = (statistics.median(samples[name]) * 1e3 for name in workers)
        print(f"| {backend} | {before:.2f} | {after:.2f} | {after / before:.3f} |", flush=True)
    print(f"load afterwards {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
