"""Where the tensorflow backend's training step spends its time, and what each candidate
speed-up gives, against the tutorial's TF1 graph, in one process on the same batches.

    python benchmarks/tf_variants.py time --rounds 7 --steps 50   # ms per step, interleaved
    python benchmarks/tf_variants.py numerics --steps 50          # weights after 50 steps
    python benchmarks/tf_variants.py reference                    # 3 steps vs float64 Adam
    python benchmarks/tf_variants.py kernels                      # executed kernels, ms per op
    python benchmarks/tf_variants.py boundary                     # the NumPy call boundary

Variants: see ``tf_prototypes.py``.

Both frameworks use every CPU this process may use (``--threads`` to change), whatever the
load, so that variants compare under the same thread pools.
"""

from __future__ import annotations

import argparse
import collections
import glob
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from protocol import SPEC, Data  # noqa: E402
from tf_prototypes import TF1, RawStep  # noqa: E402
from variants_common import (  # noqa: E402
    Backend,
    load_data,
    print_rounds,
    rel_errors,
    timed_rounds,
)

import convspec  # noqa: E402
from convspec.threads import affinity_cpus, request_threads  # noqa: E402


def variants(data: Data, which: list[str]) -> dict[str, object]:
    def make(name: str) -> object:
        if name == "backend":
            return Backend(data)
        if name == "backend-opsadam":  # Adam op by op, as before the fused kernel
            backend = Backend(data)
            backend.model.optimizer.fused = False
            return backend
        if name == "tf1":
            return TF1(data)
        return RawStep(data, name)

    return {name: make(name) for name in which}


def time_variants(args: argparse.Namespace) -> None:
    data = load_data(args.steps)
    samples = timed_rounds(variants(data, args.variants), args.steps, args.rounds)
    print_rounds(samples, "tf1", args.disturbed)


def numerics(args: argparse.Namespace) -> None:
    data = load_data(args.steps, random=args.random)
    torch_ref = Backend(data, "torch")
    runs = {"torch backend": torch_ref, **variants(data, args.variants)}
    for run in runs.values():
        for i in range(args.steps):
            run(i)
    ref_w, ref_s = torch_ref.weights(), torch_ref.slots()
    tf_w = runs["backend"].weights() if "backend" in runs else None
    print(f"{'random' if args.random else 'Fashion-MNIST'} data, after {args.steps} steps; "
          f"tolerances (tests/test_cross_backend.py): weights 1e-4, "
          "optimizer slots 1e-3\n| variant | weights vs torch backend | slots vs torch "
          "backend | weights vs tensorflow backend |\n|---|---|---|---|")
    for name, run in runs.items():
        slots = f"{rel_errors(ref_s, run.slots()):.1e}" if hasattr(run, "slots") else "-"
        vs_tf = f"{rel_errors(tf_w, run.weights()):.1e}" if tf_w is not None else "-"
        print(f"| {name} | {rel_errors(ref_w, run.weights()):.1e} | {slots} | {vs_tf} |")


def reference(args: argparse.Namespace) -> None:
    """3 steps against the documented Adam in float64 NumPy on each step's own gradients,
    with tests/test_parity.py's tolerance (rtol 1e-5, atol 1e-5 max|want|): the fraction of
    it used (<= 1 passes), for the spec's Adam and the parity test's (lr 0.01, b1 0.8, b2 0.9,
    eps 1e-3)."""
    data = load_data(3, random=True)
    print("| variant | Adam | weights: tolerance used | m | v |\n|---|---|---|---|---|")
    for adam in ((1e-4, 0.9, 0.999, 1e-8), (0.01, 0.8, 0.9, 1e-3)):
        for name in args.variants:
            if not name.startswith("raw"):
                continue
            run = RawStep(data, name, adam)
            lr, b1, b2, eps = adam
            w = {k: v.astype(np.float64) for k, v in run.weights().items()}
            m = {k: np.zeros_like(v) for k, v in w.items()}
            v = {k: np.zeros_like(x) for k, x in w.items()}
            for t in range(1, 4):
                for k, g in run.gradients(t - 1).items():
                    g = g.astype(np.float64)
                    m[k] += (g - m[k]) * (1 - b1)
                    v[k] += (g * g - v[k]) * (1 - b2)
                    w[k] -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m[k] / (
                        np.sqrt(v[k]) + eps)
                run(t - 1)
            got, slots = run.weights(), run.slots()

            def used(want: dict, have: dict) -> float:
                return max(float(np.max(np.abs(have[k] - want[k])
                                        / (1e-5 * np.abs(want[k]).max() + 1e-5 * np.abs(want[k]))))
                           for k in want)

            print(f"| {name} | {adam} | {used(w, got):.2f} | "
                  f"{used(m, {k: slots[f'm/{k}'] for k in m}):.2f} | "
                  f"{used(v, {k: slots[f'v/{k}'] for k in v}):.2f} |", flush=True)


def op_times(run, steps: int) -> tuple[dict[str, float], float]:
    """ms per step of each executed kernel (TF profiler's host trace), and the wall ms/step."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for i in range(steps):
            run(i)
        wall = (time.perf_counter() - start) / steps * 1e3
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0])
                              .read_bytes())
    totals: dict[str, float] = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute") and line.name != "python":
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "?")
                if ":" in name and not name.startswith("Executor"):  # node:kernel
                    totals[name] += event.duration_ps / 1e9 / steps
    return dict(totals), wall


CATEGORIES = (  # (category, substrings of "node:kernel"), first match wins
    ("conv backward", ("Conv2DBackprop",)),
    ("conv forward (+ bias)", ("Conv2D",)),
    ("max-pool forward + backward", ("MaxPool",)),
    ("dense (matmul) forward + backward", ("MatMul",)),
    ("relu forward + backward", ("Relu",)),
    ("Adam", ("ApplyAdam", "Sqrt", "AssignAddVariableOp", "AssignSubVariableOp", "Square",
              ":Mul", ":Sub", ":RealDiv", ":AddV2", ":Pow", ":Cast")),
    ("batch gather", ("Gather",)),
    ("loss, bias gradients, other", ("",)),
)


def kernels(args: argparse.Namespace) -> None:
    data = load_data(args.steps + 5)
    summary: dict[str, dict[str, float]] = {}
    for name, run in variants(data, args.variants).items():
        for i in range(5):
            run(i)
        totals, wall = op_times(run, args.steps)
        ops = {k: v for k, v in totals.items() if not k.startswith(("EagerLocalExecute",
                                                                     "KernelAndDevice"))}
        summary[name] = {"wall": wall}
        for op, ms in ops.items():
            category = next(c for c, keys in CATEGORIES if any(k in op for k in keys))
            summary[name][category] = summary[name].get(category, 0.0) + ms
        print(f"\n### {name}: {wall:.2f} ms/step under the profiler; kernel time "
              f"{sum(ops.values()):.2f} ms/step\n| node:kernel | ms/step |\n|---|---|")
        for op, ms in sorted(ops.items(), key=lambda kv: -kv[1])[:args.top]:
            print(f"| {op} | {ms:.3f} |")
    names = list(summary)
    print("\n| kernel time, ms/step | " + " | ".join(names) + " |\n|---|"
          + "---|" * len(names))
    for category, _ in CATEGORIES:
        print(f"| {category} | " + " | ".join(f"{summary[n].get(category, 0.0):.2f}"
                                              for n in names) + " |")
    print("| wall ms/step under the profiler | " + " | ".join(f"{summary[n]['wall']:.2f}"
                                                              for n in names) + " |")


def boundary(args: argparse.Namespace) -> None:
    """The call boundary of train_step, piece by piece (median microseconds)."""
    import tensorflow as tf

    data = load_data(64)
    backend = Backend(data).model
    rows = data.batches[0]
    x, y = data.train_x[rows], data.train_y[rows]
    backend.train_step(x, y)
    tx, ty = tf.constant(x), tf.constant(y)
    concrete = backend._train_concrete
    trivial = tf.function(lambda a, b: tf.shape(a)[0] + tf.shape(b)[0]).get_concrete_function(
        tf.TensorSpec([None, 28, 28, 1], tf.float32), tf.TensorSpec([None], tf.int64))
    pieces = {
        "gather x[rows], y[rows] (NumPy)": lambda: (data.train_x[rows], data.train_y[rows]),
        "input checks (_images, _labels)": lambda: backend._labels(y, len(backend._images(x))),
        "tf.constant(x), tf.constant(y)": lambda: (tf.constant(x), tf.constant(y)),
        "train_step(x, y), whole": lambda: backend.train_step(x, y),
        "concrete function on tensors": lambda: concrete(tx, ty),
        "dispatch: a trivial concrete function, same inputs": lambda: trivial(tx, ty),
    }
    times: dict[str, list[float]] = {name: [] for name in pieces}
    for _ in range(args.rounds):  # interleaved, like every timing here
        for name, fn in pieces.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[name].append((time.perf_counter() - start) / args.steps * 1e6)
    print("| piece | us per call (median of rounds) |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):,.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["time", "numerics", "reference", "kernels",
                                         "boundary"])
    parser.add_argument("--variants", default="backend,raw-explicit,raw-same,raw-padvalid,"
                        "raw-same-add,raw-same-fused,raw-same-fusedexact,raw-same-fusedexact-add,"
                        "raw-same-fusedexact-add-gather,raw-same-fusedexact-add-relufirst,tf1")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--random", action="store_true",
                        help="numerics on the cross-backend tests' random batches")
    parser.add_argument("--disturbed", type=float, default=0.1,
                        help="other load (cores) above which a round is flagged")
    parser.add_argument("--top", type=int, default=14, help="kernels listed per variant")
    parser.add_argument("--threads", type=int, default=len(affinity_cpus()))
    args = parser.parse_args()
    args.variants = args.variants.split(",")
    request_threads(args.threads)
    convspec.compile(convspec.load_spec(SPEC), backend="tensorflow")  # sets TF's threads
    print(f"{args.threads} intra-/inter-op threads", file=sys.stderr)
    {"time": time_variants, "numerics": numerics, "kernels": kernels, "boundary": boundary,
     "reference": reference}[args.what](args)


if __name__ == "__main__":
    main()
