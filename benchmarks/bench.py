"""Benchmarks, run by hand; results go in benchmarks/README.md with the command used.

    python benchmarks/bench.py compare   # compiled vs hand-written, per framework
    python benchmarks/bench.py peak      # training throughput as a fraction of matmul peak
    python benchmarks/bench.py cli       # cold `convspec shapes` wall time
    python benchmarks/bench.py data      # minibatch sampling vs training throughput
    python benchmarks/bench.py sweep     # steps/s against batch size
    python benchmarks/bench.py fastpaths # opt-in torch.compile / XLA / channels_last vs default
    python benchmarks/bench.py nproc     # 300 training iterations on 1 and 2 processes/replicas
    python benchmarks/bench.py precision # fp32 vs mixed bf16 / fp16 training steps
    python benchmarks/bench.py all

Timings are interleaved (compiled, hand-written, compiled, ...) and reported as medians over
rounds, because the machine is shared and noisy; compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SPEC = ROOT / "specs" / "mnist.yaml"


def _batch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)


def _time(fn: Callable[[], object], steps: int) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t) / steps


def _interleaved(fns: dict[str, Callable[[], object]], steps: int, rounds: int) -> dict[str, float]:
    """Median seconds per call of each function, measured in alternating rounds."""
    for fn in fns.values():  # warm-up (tracing, allocator, thread pools)
        _time(fn, 5)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(_time(fn, steps))
    return {k: statistics.median(v) for k, v in samples.items()}


def _train_call(model, batch: int) -> Callable[[], object]:
    x, y = _batch(batch)
    return lambda: model.train_step(x, y)


def _compiled(backend: str, **options: object):
    import convspec

    return convspec.compile(convspec.load_spec(SPEC), backend=backend, **options)


def _torch_pair(batch: int):
    import torch
    from handwritten import torch_model

    hand, _, step = torch_model()
    x, y = _batch(batch)
    tx, ty = torch.from_numpy(x).view(batch, 1, 28, 28), torch.from_numpy(y)
    model = _compiled("torch")

    def hand_infer() -> object:
        with torch.inference_mode():
            return hand(tx).numpy()

    return (lambda: model.train_step(x, y), lambda: step(tx, ty),
            lambda: model.predict(x), hand_infer)


def _keras_pair(batch: int):
    import tensorflow as tf
    from handwritten import keras_model

    hand, step = keras_model()
    x, y = _batch(batch)
    infer = tf.function(lambda t: hand(t, training=False),
                        input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    model = _compiled("tensorflow")
    return (lambda: model.train_step(x, y), lambda: step(x, y),
            lambda: model.predict(x), lambda: infer(x).numpy())


def compare(args: argparse.Namespace) -> None:
    from convspec.backends import is_available

    print("| framework | measure | convspec | hand-written | ratio |\n|---|---|---|---|---|")
    for backend, make in (("torch", _torch_pair), ("tensorflow", _keras_pair)):
        if not is_available(backend):
            continue
        for batch in (64, 256):
            c_train, h_train, c_inf, h_inf = make(batch)
            r = _interleaved({"c": c_train, "h": h_train}, args.steps, args.rounds)
            print(f"| {backend} | train step, batch {batch} | {r['c'] * 1e3:.2f} ms | "
                  f"{r['h'] * 1e3:.2f} ms | {r['c'] / r['h']:.3f} |", flush=True)
            if batch == 256:
                r = _interleaved({"c": c_inf, "h": h_inf}, args.steps, args.rounds)
                print(f"| {backend} | inference, batch 256 | {256 / r['c']:,.0f} img/s | "
                      f"{256 / r['h']:,.0f} img/s | {r['c'] / r['h']:.3f} |", flush=True)


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Best float32 GFLOP/s of an n x n matmul, NumPy or PyTorch, whichever is faster here."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    best = min(_time(lambda: a @ a, 1) for _ in range(repeats))
    try:
        import torch

        t = torch.from_numpy(a)
        best = min(best, *(_time(lambda: torch.mm(t, t), 1) for _ in range(repeats)))
    except ImportError:
        pass
    return 2 * n**3 / best / 1e9


def peak(args: argparse.Namespace) -> None:
    import convspec
    from convspec.backends import available_backends

    spec = convspec.load_spec(SPEC)
    fwd = convspec.infer_shapes(spec).flops
    train_flops = 3 * fwd  # forward + backward (input and weight gradients) per image
    gflops = matmul_peak()
    print(f"float32 matmul peak: {gflops:.1f} GFLOP/s ({os.cpu_count()} cores visible)")
    print(f"training cost: 3 x {fwd / 1e6:.2f} MFLOP forward = {train_flops / 1e6:.1f} MFLOP "
          f"per image")
    for backend in available_backends():
        model = _compiled(backend)
        for batch in (64, 256):
            sec = _interleaved({"c": _train_call(model, batch)}, args.steps, args.rounds)["c"]
            rate = batch / sec
            frac = rate * train_flops / 1e9 / gflops
            print(f"{backend:<10} batch {batch:>4}: {rate:8,.0f} img/s = "
                  f"{rate * train_flops / 1e9:5.1f} GFLOP/s = {frac:.0%} of peak", flush=True)


def cli(args: argparse.Namespace) -> None:
    exe = Path(sys.executable).with_name("convspec")
    cmd = [str(exe), "shapes", str(SPEC)]
    times = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    probe = (f"import sys; from convspec.cli import main; main(['shapes', {str(SPEC)!r}]); "
             "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    print(f"cold `convspec shapes specs/mnist.yaml`: median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s over {len(times)} runs; frameworks imported: "
          f"{loaded.stdout.strip().splitlines()[-1]}")


def _fetcher(sampler, split) -> Callable[[], object]:
    def fetch() -> object:
        idx = sampler.next()
        return split.images[idx], split.labels[idx]

    return fetch


def data(args: argparse.Namespace) -> None:
    import convspec
    from convspec.train import BatchSampler

    ds = convspec.load_dataset("mnist", data_dir=args.data_dir, log=lambda m: None)
    train = ds.train
    for batch in (64, 256):
        sec = _interleaved({"d": _fetcher(BatchSampler(len(train), batch, seed=0), train)},
                           2000, args.rounds)["d"]
        print(f"sampling + gather, batch {batch}: {batch / sec:,.0f} img/s "
              f"({len(train):,} training images from {ds.source})", flush=True)


def sweep(args: argparse.Namespace) -> None:
    from convspec.backends import available_backends

    print("| backend | batch | steps/s | img/s |\n|---|---|---|---|")
    for backend in available_backends():
        model = _compiled(backend)
        for batch in (32, 64, 128, 256, 512, 1024):
            steps = max(3, args.steps * 64 // batch)
            sec = _interleaved({"c": _train_call(model, batch)}, steps, args.rounds)["c"]
            print(f"| {backend} | {batch} | {1 / sec:.1f} | {batch / sec:,.0f} |", flush=True)


def fastpaths(args: argparse.Namespace) -> None:
    """The opt-in paths against the default one, interleaved; compilation timed apart."""
    from convspec.backends import is_available

    print("| backend | variant | batch | ms/step | vs default | first step (compile) |\n"
          "|---|---|---|---|---|---|")
    for backend in ("torch", "tensorflow"):
        if not is_available(backend):
            continue
        for batch in (64, 256):
            variants = {"default": _compiled(backend), "jit": _compiled(backend, jit=True)}
            if backend == "torch":
                import torch

                variants["channels_last"] = _compiled(backend)
                variants["channels_last"].net.to(memory_format=torch.channels_last)
            first = {}
            for name, model in variants.items():
                call = _train_call(model, batch)
                first[name] = _time(call, 1)
            r = _interleaved({k: _train_call(m, batch) for k, m in variants.items()},
                             args.steps, args.rounds)
            for name in variants:
                print(f"| {backend} | {name} | {batch} | {r[name] * 1e3:.2f} | "
                      f"{r[name] / r['default']:.3f} | {first[name]:.1f} s |", flush=True)


def precision(args: argparse.Namespace) -> None:
    """Training step time in fp32, bf16 and fp16 (mixed precision), interleaved."""
    from convspec.backends import available_backends

    print("| backend | precision | batch 64 ms/step | vs fp32 |\n|---|---|---|---|")
    for backend in available_backends():
        calls = {p: _train_call(_compiled(backend, precision=p), 64)
                 for p in ("fp32", "bf16", "fp16")}
        r = _interleaved(calls, args.steps, args.rounds)
        for name in calls:
            print(f"| {backend} | {name} | {r[name] * 1e3:.2f} | {r[name] / r['fp32']:.2f} |",
                  flush=True)


def nproc(args: argparse.Namespace) -> None:
    """Wall time of 300 training iterations with --nproc 1 and 2 (offline MNIST sample)."""
    import json
    import tempfile

    from convspec.backends import available_backends

    print("| backend | --nproc | training seconds (final.json) | test accuracy |\n"
          "|---|---|---|---|")
    for backend in available_backends():
        for n in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "run"
                subprocess.run([sys.executable, "-m", "convspec", "train", str(SPEC),
                                "--backend", backend, "--nproc", str(n), "--iterations", "300",
                                "--out", str(out), "--no-progress"], check=True,
                               capture_output=True, cwd=ROOT)
                final = json.loads((out / "final.json").read_text())
            print(f"| {backend} | {n} | {final['elapsed_seconds']:.1f} | "
                  f"{final['test']['accuracy']:.1%} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["compare", "peak", "cli", "data", "sweep", "fastpaths",
                                         "nproc", "precision", "all"])
    parser.add_argument("--steps", type=int, default=20, help="calls per timed round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    args = parser.parse_args()
    for name in (["compare", "peak", "cli", "data", "sweep", "fastpaths", "nproc", "precision"]
                 if args.what == "all"
                 else [args.what]):
        print(f"\n## {name}", flush=True)
        globals()[name](args)


if __name__ == "__main__":
    main()
