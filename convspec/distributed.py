"""Where this process sits in a data-parallel run, read from the launcher's environment.

convspec trains on the engines users already run: PyTorch ``DistributedDataParallel`` under
``torchrun`` (one process per device; ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and
TensorFlow's ``MirroredStrategy`` (one process, several local devices) or
``MultiWorkerMirroredStrategy`` (one process per host, described by ``TF_CONFIG``). This
module describes the layout, framework-free, and starts torchrun for the backends that train
one process per device (``launch_torchrun``); the backends do the communication and decide,
through their ``parallel_layout`` / ``launch`` hooks, which launcher they train under.

Batch sizes: ``train.batch_size`` is always the *global* batch, the number of images one
optimizer step sees in total. Every process draws the same global batch indices (same
sampler, same seed) and keeps its own contiguous shard (``shard``); a process with several
local devices splits its shard again, equally. So a run means the same thing (same data
order, same updates up to float rounding) on 1 or N workers, and the batch size must divide
evenly by the number of replicas.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import UsageError


@dataclass(frozen=True)
class Parallel:
    """The data-parallel layout seen from one process.

    ``processes`` workers (ranks), this one is ``rank``; each drives ``local_devices``
    replicas (1 under torchrun; N for TensorFlow's MirroredStrategy).
    """

    processes: int = 1
    rank: int = 0
    local_rank: int = 0
    local_devices: int = 1
    launcher: str = "none"  # "torchrun", "tf_config", "local" or "none"

    @property
    def replicas(self) -> int:
        return self.processes * self.local_devices

    @property
    def is_primary(self) -> bool:
        """Rank 0: the only process that logs, validates, writes metrics and checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.replicas > 1

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.replicas:
            raise UsageError(
                f"the global batch size {batch_size} does not divide evenly over "
                f"{self.replicas} replicas ({self.processes} process(es) x "
                f"{self.local_devices} device(s)); train.batch_size is the global batch, "
                f"so choose a multiple of {self.replicas} (--batch-size)")

    def shard(self, batch_size: int) -> slice:
        """This process's contiguous part of every global batch of ``batch_size``."""
        per = batch_size // self.processes
        return slice(self.rank * per, (self.rank + 1) * per)


SINGLE = Parallel()


def _int_env(env: Mapping[str, str], key: str) -> int:
    try:
        value = int(env[key])
    except ValueError:
        raise UsageError(f"environment variable {key}={env[key]!r} is not an integer "
                         f"(it is set by torchrun)") from None
    if value < 0:
        raise UsageError(f"environment variable {key}={value} must not be negative")
    return value


def from_torchrun(env: Mapping[str, str] | None = None) -> Parallel | None:
    """The layout torchrun (torch.distributed.run) describes, or None outside it."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    world, rank = _int_env(env, "WORLD_SIZE"), _int_env(env, "RANK")
    local = _int_env(env, "LOCAL_RANK") if "LOCAL_RANK" in env else rank
    if world < 1 or rank >= world:
        raise UsageError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return Parallel(processes=world, rank=rank, local_rank=local, launcher="torchrun")


def from_tf_config(env: Mapping[str, str] | None = None) -> Parallel | None:
    """The layout a ``TF_CONFIG`` describes (workers and an optional chief), or None."""
    env = os.environ if env is None else env
    raw = env.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        workers = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"TF_CONFIG is not a valid cluster description ({exc}); expected "
                         '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
                         '"worker", "index": 0}}') from None
    if kind not in ("chief", "worker") or not workers:
        raise UsageError(f"TF_CONFIG task type {kind!r} cannot train; convspec runs chief and "
                         f"worker tasks of a MultiWorkerMirroredStrategy cluster")
    rank = index if kind == "chief" else index + len(cluster.get("chief", []))
    if rank >= len(workers):
        raise UsageError(f"TF_CONFIG task index {index} is outside its {len(workers)}-task "
                         f"cluster")
    return Parallel(processes=len(workers), rank=rank, launcher="tf_config")


def describe(parallel: Parallel, batch_size: int) -> str:
    """One line for the log: how the global batch is split."""
    per = batch_size // parallel.replicas
    return (f"Data parallel: {parallel.processes} process(es) x {parallel.local_devices} "
            f"device(s) = {parallel.replicas} replicas; global batch {batch_size} = "
            f"{parallel.replicas} x {per} per replica")


def torchrun_argv(nproc: int, args: list[str]) -> list[str]:
    """``torchrun --standalone --nproc-per-node N -m convspec <args>`` for this Python."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "convspec", *args]


def launch_torchrun(nproc: int, args: list[str]) -> int:
    """Run ``convspec <args>`` on ``nproc`` processes under torchrun; its exit status.

    torchrun (``python -m torch.distributed.run``) is PyTorch's own launcher: it starts one
    worker per process slot, gives each its RANK / WORLD_SIZE / LOCAL_RANK and a rendezvous,
    and tears every worker down when one fails; convspec only builds its command line. Ctrl-C
    reaches the workers directly (they checkpoint at a step boundary), so this process only
    waits.
    Each worker gets ``--threads`` threads when given, else OMP_NUM_THREADS when set, else an
    equal share of the cores free to this process (``convspec.threads``).
    """
    if importlib.util.find_spec("torch") is None:
        raise UsageError('--nproc with the torch backend needs PyTorch: pip install '
                         '"convspec[torch]"')
    from .threads import ENV, choose_threads, requested_threads

    env = dict(os.environ)
    if requested_threads() is not None:  # --threads is per process: it reaches the workers so
        env[ENV] = str(requested_threads())
    env.setdefault(ENV, str(max(1, choose_threads().threads // nproc)))
    argv = torchrun_argv(nproc, args)
    print(f"Starting {nproc} processes with torchrun: {' '.join(argv[1:])}", file=sys.stderr,
          flush=True)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call(argv, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
