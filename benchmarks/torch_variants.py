"""Where the torch backend's training step spends its time against idiomatic PyTorch, and what
each candidate speed-up gives, in one process on the same batches.

    python benchmarks/torch_variants.py time --rounds 7 --steps 50
    python benchmarks/torch_variants.py numerics --steps 50       # vs both backends, 50 steps
    python benchmarks/torch_variants.py profile --steps 20        # torch.profiler, per op
    python benchmarks/torch_variants.py boundary                  # the NumPy call boundary
    python benchmarks/torch_variants.py pools --threads 1         # torch's max-pool layouts

Variants:

* ``backend``: ``convspec.compile(spec, "torch").train_step(x, y)`` as it is today (Adam
  through ``torch._fused_adam_``, one CPU kernel for every tensor, given
  ``eps / sqrt(1 - b2^t)``);
* ``backend-foreachadam``: the same model with its Adam as ``torch._foreach_*`` ops (the
  backend before the fused kernel);
* ``raw``: the backend's ops with nothing around them (``F.conv2d`` .. ``F.cross_entropy``,
  ``autograd.grad``, a foreach Adam) on tensors: the floor of this design;
* ``raw-cl``: ``raw`` with the input and conv kernels channels_last (the convolutions and
  pools run on channels_last tensors; the flatten copies back to NCHW order);
* ``raw-clpool``: ``raw`` with each max-pool's input converted to channels_last and its
  output back;
* ``hand``, ``hand-foreach``, ``hand-fused``: idiomatic ``nn.Sequential`` with
  ``torch.optim.Adam`` as it defaults on CPU, with ``foreach=True``, with ``fused=True``.

Every variant starts from the same weights; threads are every CPU this process may use.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from peer_torch import torch_weights  # noqa: E402
from protocol import Data  # noqa: E402
from variants_common import (  # noqa: E402
    Backend,
    load_data,
    print_rounds,
    rel_errors,
    timed_rounds,
)

from convspec.threads import affinity_cpus, request_threads  # noqa: E402


class ForeachAdamBackend(Backend):
    """The backend with its Adam done by the ``torch._foreach_*`` ops (its form before the
    fused kernel; ``Adam(fused=False)``)."""

    def __init__(self, data: Data):
        super().__init__(data, "torch")
        self.model.optimizer.fused = False


class Raw:
    """The backend's computation as bare functional ops on NCHW tensors; ``layout``: "cl"
    runs the convolutions and pools on channels_last tensors (input and kernels stored so),
    "clpool" converts to channels_last around each max-pool only."""

    def __init__(self, data: Data, layout: str = "nchw"):
        import torch

        self.torch, self.data, self.layout = torch, data, layout
        w = [torch.from_numpy(np.ascontiguousarray(a)) for a in torch_weights(data.weights)]
        if layout == "cl":
            w = [a.contiguous(memory_format=torch.channels_last) if a.dim() == 4 else a
                 for a in w]
        w = [a.requires_grad_() for a in w]
        self.params = w
        self.m = [torch.zeros_like(p) for p in w]
        self.v = [torch.zeros_like(p) for p in w]
        self.step = 0
        self.x = torch.from_numpy(data.train_x).permute(0, 3, 1, 2).contiguous()
        self.y = torch.from_numpy(data.train_y)

    def _pool(self, h):
        torch = self.torch
        if self.layout != "clpool":
            return torch.nn.functional.max_pool2d(h, 2)
        h = torch.nn.functional.max_pool2d(h.contiguous(memory_format=torch.channels_last), 2)
        return h.contiguous()

    def __call__(self, i: int) -> None:
        torch = self.torch
        F = torch.nn.functional
        idx = torch.from_numpy(self.data.batches[i])
        x, y = self.x[idx], self.y[idx]
        if self.layout == "cl":
            x = x.contiguous(memory_format=torch.channels_last)
        k1, b1, k2, b2, w3, b3, w4, b4 = self.params
        h = F.relu(self._pool(F.conv2d(x, k1, b1, padding=2)))
        h = F.relu(self._pool(F.conv2d(h, k2, b2, padding=2)))
        h = F.relu(F.linear(h.flatten(1), w3, b3))
        loss = F.cross_entropy(F.linear(h, w4, b4), y)
        grads = torch.autograd.grad(loss, self.params)
        self.step += 1
        t = self.step
        lr_t = 1e-4 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        with torch.no_grad():
            torch._foreach_lerp_(self.m, grads, 0.1)
            torch._foreach_lerp_(self.v, torch._foreach_mul(grads, grads), 1 - 0.999)
            denom = torch._foreach_sqrt(self.v)
            torch._foreach_add_(denom, 1e-8)
            torch._foreach_addcdiv_(self.params, self.m, denom, value=-lr_t)


class Hand:
    """``peer_torch``'s model and loop, one step per call; ``adam``: torch.optim.Adam keywords."""

    def __init__(self, data: Data, **adam: bool):
        import torch
        from peer_torch import TorchEager

        self.peer = TorchEager(data)
        if adam:
            self.peer.optimizer = torch.optim.Adam(self.peer.model.parameters(), lr=1e-4, **adam)

    def __call__(self, i: int) -> None:
        p = self.peer
        idx = p.batches[i]
        p.optimizer.zero_grad()
        p.loss_fn(p.model(p.x[idx]), p.y[idx]).backward()
        p.optimizer.step()


def variants(data: Data, which: list[str]) -> dict[str, object]:
    make = {
        "backend": lambda: Backend(data, "torch"),
        "raw": lambda: Raw(data),
        "raw-cl": lambda: Raw(data, "cl"),
        "raw-clpool": lambda: Raw(data, "clpool"),
        "backend-foreachadam": lambda: ForeachAdamBackend(data),
        "hand": lambda: Hand(data),
        "hand-foreach": lambda: Hand(data, foreach=True),
        "hand-fused": lambda: Hand(data, fused=True),
    }
    return {name: make[name]() for name in which}


def time_variants(args: argparse.Namespace) -> None:
    data = load_data(args.steps)
    print_rounds(timed_rounds(variants(data, args.variants), args.steps, args.rounds),
                 "hand", args.disturbed)


def numerics(args: argparse.Namespace) -> None:
    """The foreach-Adam backend against both backends as they are, on the tests' data."""
    data = load_data(args.steps, random=True)
    runs = {"torch backend": Backend(data, "torch"), "tensorflow backend": Backend(data),
            "backend-foreachadam": ForeachAdamBackend(data)}
    for run in runs.values():
        for i in range(args.steps):
            run(i)
    ref = runs["torch backend"]
    print(f"random data (tests/test_cross_backend.py), {args.steps} steps; tolerances: weights "
          "1e-4, slots 1e-3\n| variant | weights vs torch backend | slots vs torch backend |"
          " weights vs tensorflow backend |\n|---|---|---|---|")
    for name, run in runs.items():
        print(f"| {name} | {rel_errors(ref.weights(), run.weights()):.1e} | "
              f"{rel_errors(ref.slots(), run.slots()):.1e} | "
              f"{rel_errors(runs['tensorflow backend'].weights(), run.weights()):.1e} |")


def profile(args: argparse.Namespace) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    data = load_data(args.steps + 5)
    for name, run in variants(data, args.variants).items():
        for i in range(5):
            run(i)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for i in range(args.steps):
                run(i + 5)
            wall = (time.perf_counter() - start) / args.steps * 1e3
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        print(f"\n### {name}: {wall:.2f} ms/step under the profiler\n"
              "| op | self ms/step | calls/step |\n|---|---|---|")
        for e in events[:args.top]:
            print(f"| {e.key} | {e.self_cpu_time_total / 1e3 / args.steps:.3f} | "
                  f"{e.count / args.steps:g} |")


def boundary(args: argparse.Namespace) -> None:
    """train_step's NumPy boundary, piece by piece (median microseconds per call)."""
    data = load_data(64)
    model = Backend(data, "torch").model
    rows = data.batches[0]
    x, y = data.train_x[rows], data.train_y[rows]
    model.train_step(x, y)
    pieces = {
        "gather x[rows], y[rows] (NumPy)": lambda: (data.train_x[rows], data.train_y[rows]),
        "_images + _to_nchw": lambda: model._to_nchw(model._images(x)),
        "_labels (checks + tensor)": lambda: model._labels(y, len(y)),
        "_ieee() context": lambda: model._ieee().__enter__(),
        "train_step(x, y), whole": lambda: model.train_step(x, y),
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


def pools(args: argparse.Namespace) -> None:
    """torch's 2x2 max-pool of the first pool's input (64, 16, 28, 28): NCHW as the backend
    runs it, through channels_last (converted both ways), and on a channels_last input; CPU
    milliseconds per call, forward and forward + backward (median of rounds)."""
    import torch
    import torch.nn.functional as F

    x = torch.rand(64, 16, 28, 28)
    grad = torch.rand(64, 16, 14, 14)
    last = x.contiguous(memory_format=torch.channels_last)
    forms = {
        "NCHW (the backend)": lambda t: F.max_pool2d(t, 2),
        "via channels_last": lambda t: F.max_pool2d(
            t.contiguous(memory_format=torch.channels_last), 2).contiguous(),
    }

    def cpu_ms(fn) -> float:
        fn()
        times = []
        for _ in range(args.rounds):
            start = time.process_time()
            for _ in range(args.steps):
                fn()
            times.append((time.process_time() - start) / args.steps * 1e3)
        return statistics.median(times)

    def row(name: str, pool, data) -> None:
        assert torch.equal(pool(data), F.max_pool2d(x, 2))
        leaf = data.clone().requires_grad_()
        print(f"| {name} | {cpu_ms(lambda: pool(data)):.2f} | "
              f"{cpu_ms(lambda: torch.autograd.grad(pool(leaf), leaf, grad)):.2f} |")

    print("| max-pool form | forward, CPU ms | forward + backward, CPU ms |\n|---|---|---|")
    for name, pool in forms.items():
        row(name, pool, x)
    row("channels_last input and output", lambda t: F.max_pool2d(t, 2), last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["time", "numerics", "profile", "boundary", "pools"])
    parser.add_argument("--variants",
                        default="backend,backend-foreachadam,raw,hand,hand-foreach,hand-fused")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--disturbed", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=len(affinity_cpus()))
    args = parser.parse_args()
    args.variants = args.variants.split(",")
    request_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)  # the hand-written variants too
    print(f"{args.threads} threads", file=sys.stderr)
    {"time": time_variants, "numerics": numerics, "profile": profile, "boundary": boundary,
     "pools": pools}[args.what](args)


if __name__ == "__main__":
    main()
