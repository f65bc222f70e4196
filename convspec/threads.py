"""How many intra-op threads a process should use: the cores actually free to it.

A framework's default is one thread per core of the machine. That is right on an idle machine
and badly wrong on a busy one: a PyTorch training step on 2 cores, with another process
keeping one of them busy, took 2.2x (``benchmarks/README.md``, "Robust on a busy machine") to
5-7x (issue 15) longer with the default 2 threads than with 1: every parallel region waits
for the thread that shares its core. So convspec counts the cores this process may really
use, in order:

1. an explicit request (``request_threads``, i.e. ``convspec train --threads N``) wins;
2. else ``OMP_NUM_THREADS`` set by the user wins (the variable every CPU framework reads);
3. else the CPUs of this process's affinity mask (``os.sched_getaffinity``), capped by the
   cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``, rounded
   down like uber-go/automaxprocs, at least 1), less the cores other processes keep busy right
   now (a short ``/proc/stat`` sample of those CPUs, this process's own CPU time taken out).
   A core counts as busy when others use more than ``BUSY_THRESHOLD`` of one on average.

Framework-free (standard library only); the backends apply the result in their ``compile``:
torch gets ``threads`` (the free cores), TensorFlow ``cores`` (step 3 without the load), because
its work-sharing thread pool kept two threads faster than one with other processes on the
cores, where torch's OpenMP regions collapsed (``benchmarks/busy.py``).
The automatic count is measured once per process (thread pools are per process, and
TensorFlow's cannot change after it starts), unless ``refresh`` asks again.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

ENV = "OMP_NUM_THREADS"
BUSY_THRESHOLD = 0.25  # cores of load from others before a core is given up
SAMPLE_SECONDS = 0.1  # /proc/stat resolution is 10 ms per CPU: about 5% of a core here
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (not idle, iowait)


@dataclass(frozen=True)
class ThreadChoice:
    """``threads``: the cores free to this process now (>= 1); ``cores``: those it may use,
    load aside (affinity and quota; equal to ``threads`` when fixed by the user);
    ``reason``: where the numbers came from."""

    threads: int
    cores: int
    reason: str


_requested: int | None = None
_measured: ThreadChoice | None = None


def request_threads(threads: int | None) -> None:
    """Fix this process's thread count (``None``: automatic again). UsageError below 1."""
    global _requested
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise UsageError(f"the number of threads must be a positive integer, got {threads!r}")
    _requested = threads


def requested_threads() -> int | None:
    """What ``request_threads`` fixed, or None."""
    return _requested


def affinity_cpus() -> set[int]:
    """CPU numbers this process may run on (all of ``os.cpu_count()`` where the OS has no
    affinity call)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _quota_v2(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _quota_v1(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _ancestors(root: Path, path: str) -> list[Path]:
    """``root/path`` and each parent up to ``root`` (a parent's quota also limits us)."""
    parts = [p for p in path.strip("/").split("/") if p]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def cgroup_quota(proc_cgroup: str | os.PathLike = "/proc/self/cgroup",
                 root: str | os.PathLike = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. 1.5), or None when unlimited.

    ``proc_cgroup`` lists the process's groups (``0::/path`` for v2, ``N:cpu,cpuacct:/path``
    for v1); the tightest quota of the group and its ancestors under ``root`` applies. In a
    container the listed path may not exist under ``root`` (a cgroup namespace): then
    ``root`` itself is the group.
    """
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    root = Path(root)
    quotas: list[float] = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2 unified hierarchy
            quotas += [q for d in _ancestors(root, path) if (q := _quota_v2(d)) is not None]
        elif "cpu" in controllers.split(","):
            for mount in (controllers, "cpu,cpuacct", "cpu"):
                base = root / mount
                if base.is_dir():
                    quotas += [q for d in _ancestors(base, path)
                               if (q := _quota_v1(d)) is not None]
                    break
    return min(quotas) if quotas else None


def _cpu_times(cpus: set[int], stat: Path) -> dict[int, tuple[int, int]]:
    """cpu -> (busy jiffies, total jiffies) from a /proc/stat text."""
    out = {}
    for line in stat.read_text().splitlines():
        match = re.match(r"cpu(\d+)\s+(.*)", line)
        if match and int(match[1]) in cpus:
            values = [int(v) for v in match[2].split()]
            out[int(match[1])] = (sum(values[i] for i in _BUSY_FIELDS if i < len(values)),
                                  sum(values[:8]))
    return out


def busy_elsewhere(cpus: set[int], seconds: float = SAMPLE_SECONDS,
                   stat: str | os.PathLike = "/proc/stat") -> float:
    """Cores' worth of work other processes did on ``cpus`` over the next ``seconds``.

    Busy time (user, nice, system, irq, softirq, steal) per CPU from ``/proc/stat``, as a
    fraction of that CPU's elapsed time, summed, minus this process's own CPU time over the
    same wall time. 0.0 where ``/proc/stat`` cannot be read (not Linux).
    """
    path = Path(stat)
    try:
        before, own0, wall0 = _cpu_times(cpus, path), _own_cpu(), time.monotonic()
        time.sleep(seconds)
        after, own1, wall1 = _cpu_times(cpus, path), _own_cpu(), time.monotonic()
    except OSError:
        return 0.0
    busy = 0.0
    for cpu, (b1, t1) in after.items():
        b0, t0 = before.get(cpu, (b1, t1))
        busy += (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
    return max(0.0, busy - (own1 - own0) / max(wall1 - wall0, 1e-9))


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def usable_cores(allowed: int, quota: float | None) -> int:
    """``allowed`` CPUs capped by ``quota`` cores rounded down, at least 1."""
    return allowed if quota is None else min(allowed, max(1, math.floor(quota)))


def free_cores(allowed: int, quota: float | None, others: float) -> int:
    """Threads for ``allowed`` CPUs under ``quota`` cores with ``others`` cores busy
    elsewhere: ``min(floor(quota), allowed - ceil(others - BUSY_THRESHOLD))``, at least 1
    (load from others takes a whole core once it passes ``BUSY_THRESHOLD`` of one)."""
    cap = usable_cores(allowed, quota)
    taken = max(0, math.ceil(others - BUSY_THRESHOLD))
    return max(1, min(cap, allowed - taken))


def _from_env(environ: Mapping[str, str]) -> int | None:
    """OMP_NUM_THREADS as OpenMP reads it: the first of a comma list; None if unset or bad."""
    match = re.fullmatch(r"\s*(\d+)\s*(,.*)?", environ.get(ENV, ""))
    return int(match[1]) if match and int(match[1]) >= 1 else None


def choose_threads(explicit: int | None = None, *, environ: Mapping[str, str] | None = None,
                   refresh: bool = False) -> ThreadChoice:
    """The intra-op thread count for this process and why (see the module docstring)."""
    global _measured
    explicit = explicit if explicit is not None else _requested
    if explicit is not None:
        return ThreadChoice(explicit, explicit, f"--threads {explicit}")
    env = _from_env(os.environ if environ is None else environ)
    if env is not None:
        return ThreadChoice(env, env, f"{ENV}={env}")
    if _measured is None or refresh:
        cpus = affinity_cpus()
        quota = cgroup_quota()
        others = busy_elsewhere(cpus)
        limit = "" if quota is None else f", cgroup quota {quota:g} cores"
        _measured = ThreadChoice(free_cores(len(cpus), quota, others),
                                 usable_cores(len(cpus), quota),
                                 f"{len(cpus)} CPUs allowed{limit}, "
                                 f"{others:.2f} cores busy elsewhere")
    return _measured
