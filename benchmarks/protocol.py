"""The measurement protocol shared by every peer: data, minibatches, load meter, worker loop.

One worker process runs one peer once: it loads the prepared arrays (the same file for every
peer), builds the peer from the same initial weights, trains ``steps`` Adam steps on the
same minibatches (index rows drawn once, gathered from in-memory arrays inside the timed
loop), and reports

* ``images_per_s``: images of steps ``warmup + 1 .. steps`` over their wall time;
* ``other_load``: cores' worth of work other processes did meanwhile (``/proc/stat`` busy
  time of every CPU minus this process's own CPU time);
* ``page_faults_per_step``: minor page faults of this process per timed step (memory the
  allocator gave back to the kernel and took again: ``convspec.allocator``);
* ``startup_s``: from the parent's ``Popen`` (``--t0``) to the end of the first training step
  (interpreter, imports, data, model, tracing: what a person waits for);
* ``eval_images_per_s`` / ``test_accuracy``: the 10,000 test images at batch 256 (the
  tutorial's ``test_batch_size``), second of two passes (the first one is kept too).

Frameworks are imported only inside the worker, by the peer module it runs.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "mnist.yaml"
BATCH = 64
EVAL_BATCH = 256
TRAIN_FLOPS = 20.18e6  # per training image: 3 x the forward pass (`convspec shapes`)
FASHION = Path("/usr/share/datasets/fashion-mnist")
MNIST = ROOT.parent / "shared" / "data" / "mnist"


@dataclass
class Data:
    """What every peer gets: NHWC float32 images in [0, 1], int64 labels, the minibatch index
    rows (steps, 64) and the canonical initial weights (``convspec.init_weights``)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    batches: np.ndarray
    weights: dict[str, np.ndarray]


class Peer(Protocol):
    """One way of writing the tutorial network."""

    def train(self, steps: int, on_step_end: Callable[[int], None]) -> None:
        """Run ``steps`` optimizer steps on ``data.batches``; call ``on_step_end(i)`` after
        step i (0-based) has finished."""

    def evaluate(self) -> float:
        """Test accuracy over all test images at batch ``EVAL_BATCH``."""


def prepare(path: Path, steps: int, seed: int = 0) -> str:
    """Write the shared arrays to ``path`` (npz); returns the dataset's description.

    Fashion-MNIST from Debian's package when present, else the full MNIST; the training split
    is the tutorial's 55,000 (the first 5,000 are validation, unused here).
    """
    sys.path.insert(0, str(ROOT))
    import convspec

    name, folder = ("fashion-mnist", FASHION) if FASHION.is_dir() else ("mnist", MNIST)
    ds = convspec.load_dataset(name, data_dir=folder, log=lambda m: None)
    rng = np.random.default_rng(seed)
    batches = np.stack([rng.choice(len(ds.train), BATCH, replace=False) for _ in range(steps)])
    weights = convspec.init_weights(convspec.load_spec(SPEC))
    np.savez(path, train_x=ds.train.images, train_y=ds.train.labels.astype(np.int64),
             test_x=ds.test.images, test_y=ds.test.labels.astype(np.int64), batches=batches,
             **{f"w:{k}": v for k, v in weights.items()})
    return f"{name} ({len(ds.train):,} train / {len(ds.test):,} test, {ds.source})"


def load(path: Path) -> Data:
    with np.load(path) as z:
        return Data(z["train_x"], z["train_y"], z["test_x"], z["test_y"], z["batches"],
                    {k[2:]: z[k] for k in z.files if k.startswith("w:")})


# -- load on the machine ----------------------------------------------------------------------

def cpu_busy() -> tuple[float, float]:
    """(seconds of busy CPU time summed over all CPUs since boot, this process's CPU time)."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields[i] for i in (0, 1, 2, 5, 6, 7) if i < len(fields))
    return busy / hz, time.process_time()  # every thread's, in nanoseconds (not ticks)


class Meter:
    """Other processes' load (cores) between ``start()`` and ``stop()``."""

    def start(self) -> None:
        self.wall0, (self.busy0, self.own0) = time.perf_counter(), cpu_busy()

    def stop(self) -> dict[str, float]:
        wall, (busy, own) = time.perf_counter() - self.wall0, cpu_busy()
        return {"seconds": wall, "own_cores": (own - self.own0) / wall,
                "other_load": max(0.0, (busy - self.busy0) - (own - self.own0)) / wall}


def idle_sample(seconds: float = 0.5) -> float:
    """Cores' worth of load from everything else over ``seconds`` (this process sleeps)."""
    meter = Meter()
    meter.start()
    time.sleep(seconds)
    return meter.stop()["other_load"]


# -- the worker ----------------------------------------------------------------------------------

def run_worker(peer_factory: Callable[[Data], Peer], data_path: Path, t0: float, steps: int,
               warmup: int) -> dict[str, Any]:
    """Train and evaluate one peer under the protocol; the measurements as a dict."""
    data = load(data_path)
    peer = peer_factory(data)
    stamps = np.zeros(steps)
    meter = Meter()
    first_step_end: list[float] = []
    load_during: dict[str, float] = {}
    faults: list[int] = []  # minor page faults at the start and the end of the timed steps

    def on_step_end(i: int) -> None:
        stamps[i] = time.perf_counter()
        if i == 0:
            first_step_end.append(time.time())
        if i == warmup - 1:
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
            meter.start()
        if i == steps - 1:
            load_during.update(meter.stop())
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    peer.train(steps, on_step_end)
    timed = steps - warmup
    seconds = float(stamps[-1] - stamps[warmup - 1])
    evals = []
    for _ in range(2):
        start = time.perf_counter()
        accuracy = peer.evaluate()
        evals.append(time.perf_counter() - start)
    n_test = len(data.test_y)
    return {"images_per_s": timed * BATCH / seconds, "timed_steps": timed, "seconds": seconds,
            "step_ms_median": float(np.median(np.diff(stamps[warmup - 1:])) * 1e3),
            "page_faults_per_step": (faults[1] - faults[0]) / timed,
            "startup_s": first_step_end[0] - t0,
            "eval_images_per_s": n_test / evals[1], "eval_first_pass_s": evals[0],
            "test_accuracy": accuracy, **load_during, "loadavg": os.getloadavg()[0],
            "threads": getattr(peer, "threads", None)}


def spawn(args: list[str], env: dict[str, str] | None = None,
          timeout: float = 1800) -> dict[str, Any]:
    """Run ``python benchmarks/<args>`` in a fresh process; its last stdout line as JSON, with
    ``t0`` passed on so the child can time its start-up from here."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, *args, "--t0", repr(t0)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def matmul_peak(n: int = 2048, repeats: int = 10) -> dict[str, float]:
    """Best float32 GFLOP/s of an n x n matmul with NumPy and with PyTorch (default threads),
    and with PyTorch on one thread (``torch_1_thread``: one core's peak)."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    out = {}

    def best(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 2 * n**3 / min(times) / 1e9

    out["numpy"] = best(lambda: a @ a)
    try:
        import torch

        t = torch.from_numpy(a)
        out["torch"] = best(lambda: torch.mm(t, t))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        out["torch_1_thread"] = best(lambda: torch.mm(t, t))
        torch.set_num_threads(threads)
    except ImportError:
        pass
    return out
