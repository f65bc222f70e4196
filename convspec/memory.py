"""The memory a training run needs, from the shape table, against what the machine has.

Framework-free and NumPy-free (``convspec shapes`` prints the estimate). The estimate counts
what a run cannot do without, so it is a lower bound of what the process will use:

* parameters, their gradients and the optimizer's slots (Adam 2, momentum 1, SGD 0 per
  trainable value), 4 bytes each (float32 weights and updates, also under mixed precision);
* the activations of one training batch: every layer's output is kept for the backward pass,
  and the backward pass holds the gradients of the largest layer's input and output (4 bytes
  a value, 2 under bf16 / fp16); an evaluation batch needs the largest two consecutive layers;
* the data held in memory as float32 (built-in datasets: up to ``DatasetInfo.images``
  images; ``.npz`` and IDX sources: the probed sizes; folders and CSVs are memory-mapped from
  the decoded-image cache and not counted).

``available_memory`` is what the machine has: MemAvailable of ``/proc/meminfo`` (or
``os.sysconf``), less where a cgroup limit (v2 ``memory.max`` - ``memory.current``, v1
``memory.limit_in_bytes`` - ``memory.usage_in_bytes``) leaves less. ``check_memory`` refuses a
run whose estimate exceeds it (``MemoryLimitError``, both figures and the biggest parts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConvspecError

FLOAT32 = 4
SLOTS = {"adam": 2, "momentum": 1, "sgd": 0}
_UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a number near 2**63


class MemoryLimitError(ConvspecError):
    """A run needs more memory than the machine (or its device, or its cgroup) has."""


@dataclass(frozen=True)
class Part:
    """One contributor to the estimate: what it is, its bytes, and where it lives."""

    what: str
    bytes: int
    host: bool = False  # True: main memory even when training on a GPU (the data)


@dataclass(frozen=True)
class MemoryEstimate:
    """The parts of a run's memory, largest first."""

    parts: list[Part] = field(default_factory=list)

    def total(self, *, host: bool | None = None) -> int:
        """Bytes of every part (``host``: only main-memory parts, or only device parts)."""
        return sum(p.bytes for p in self.parts if host is None or p.host == host)

    def biggest(self, n: int = 3, *, host: bool | None = None) -> str:
        """The ``n`` largest parts as ``what size`` items, comma separated."""
        parts = [p for p in self.parts if host is None or p.host == host]
        return ", ".join(f"{p.what} {format_bytes(p.bytes)}" for p in parts[:n])

    def to_dict(self) -> dict[str, Any]:
        return {"total_bytes": self.total(),
                "parts": [{"what": p.what, "bytes": p.bytes, "host": p.host}
                          for p in self.parts]}


def format_bytes(n: int | float) -> str:
    """``1.5 GB``-style (powers of 1000, like ``free -h --si`` and most dashboards), in
    integer arithmetic: exact for any size, where a float would overflow."""
    count, scale = int(round(n)), 1
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(count) < 1000 * scale or unit == "PB":
            if unit == "B":
                return f"{count:,} B"
            tenths, rest = divmod(abs(count) * 10, scale)
            tenths += 2 * rest >= scale
            sign = "-" if count < 0 else ""
            return f"{sign}{tenths // 10:,}.{tenths % 10} {unit}"
        scale *= 1000
    raise AssertionError("unreachable")


def _size(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def estimate_memory(spec: Any, *, batch_size: int | None = None, data_values: int = 0,
                    precision: str = "fp32", processes: int = 1) -> MemoryEstimate:
    """The memory training ``spec`` needs (see the module doc). ``batch_size`` defaults to
    ``train.batch_size``; ``data_values`` counts the float32 values of the data held in
    memory; ``processes`` local data-parallel processes each hold the weights and data."""
    table = spec.table
    batch = spec.train.batch_size if batch_size is None else batch_size
    act_bytes = FLOAT32 if precision == "fp32" else 2
    slots = SLOTS.get(spec.train.optimizer.kind, 2)
    parts: list[Part] = []
    for row in table.rows:
        for name, slot in row.weights.items():
            copies = 1 + (1 + slots if slot.trainable else 0)
            parts.append(Part(f"{name} (weights, gradients, optimizer)" if slot.trainable
                              else f"{name}", processes * copies * slot.size * FLOAT32))
    # a flatten's output is a view of its input (no memory of its own)
    sizes = [_size(table.input)] + [0 if row.kind == "flatten" else _size(row.output)
                                    for row in table.rows]
    names = ["input"] + [row.name for row in table.rows]
    training = [Part(f"{name} activations (batch {batch:,})", batch * size * act_bytes)
                for name, size in zip(names, sizes, strict=True) if size]
    training.append(Part(f"backward pass (batch {batch:,})",
                         2 * batch * max(sizes) * act_bytes))
    eval_batch = spec.train.eval_batch_size
    pair, at = max((a + b, i) for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)))
    evaluation = Part(f"evaluation batch ({eval_batch:,} images, {names[at]} and "
                      f"{names[at + 1]})", eval_batch * pair * act_bytes)
    parts += [evaluation] if evaluation.bytes > sum(p.bytes for p in training) else training
    if data_values:
        parts.append(Part("data in memory (float32)", processes * data_values * FLOAT32,
                          host=True))
    parts.sort(key=lambda p: p.bytes, reverse=True)
    return MemoryEstimate(parts)


def data_values(summary: Any) -> tuple[int, int | None]:
    """(float32 values a probed source holds in memory, its number of images or None when
    unknown) for ``estimate_memory``, from a ``convspec.data.probe.DataSummary``: the
    catalog's image count for a built-in dataset, the probed sizes of ``.npz`` and IDX
    sources; 0 values for folders and CSVs (memory-mapped from the decoded-image cache)."""
    if summary is None:
        return 0, None
    images = sum(summary.sizes.values()) or None
    if summary.kind == "builtin":
        from .data.catalog import DATASETS

        info = DATASETS.get(summary.name)
        images = info.images if info is not None else images
    if summary.kind not in ("builtin", "npz", "idx") or summary.shape is None or not images:
        return 0, images
    return images * _size(summary.shape), images


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room(root: Path = Path("/sys/fs/cgroup")) -> tuple[int, str] | None:
    """(bytes left under this process's cgroup memory limit, where from), or None."""
    candidates = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3 and parts[0] == "0":
                candidates.append(root / parts[2].lstrip("/"))
    except OSError:
        pass
    for folder in [*candidates, root]:  # v2: the process's own cgroup, else the root
        limit, used = (_read_int(folder / "memory.max"), _read_int(folder / "memory.current"))
        if limit is not None and used is not None:
            return max(limit - used, 0), f"cgroup limit {folder / 'memory.max'}"
    v1 = root / "memory"
    limit, used = (_read_int(v1 / "memory.limit_in_bytes"),
                   _read_int(v1 / "memory.usage_in_bytes"))
    if limit is not None and used is not None and limit < _UNLIMITED:
        return max(limit - used, 0), f"cgroup limit {v1 / 'memory.limit_in_bytes'}"
    return None


def _mem_available(meminfo: Path = Path("/proc/meminfo")) -> tuple[int, str] | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, f"MemAvailable in {meminfo}"
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return (pages, "free pages (os.sysconf)") if pages > 0 else None


def available_memory() -> tuple[int, str] | None:
    """(bytes of main memory this process can still use, where the figure comes from), or
    None when the system says nothing (then no run is refused)."""
    found = [f for f in (_mem_available(), _cgroup_room()) if f is not None]
    return min(found, key=lambda f: f[0]) if found else None


def check_memory(spec: Any, estimate: MemoryEstimate, *, host: tuple[int, str] | None,
                 device: tuple[int, str] | None = None) -> None:
    """Refuse (``MemoryLimitError``) a run whose estimate exceeds the memory available:
    ``host`` (``available_memory()``) for everything, or, with ``device`` (free bytes of the
    GPU it trains on, where from), the device parts there and the data in ``host``."""
    checks = [(estimate.total(), host, None)] if device is None else [
        (estimate.total(host=False), device, False), (estimate.total(host=True), host, True)]
    for need, have, which in checks:
        if have is None or need <= have[0]:
            continue
        place = "the GPU" if which is False else "this machine"
        raise MemoryLimitError(
            f"training spec {spec.name!r} needs at least {format_bytes(need)} of memory on "
            f"{place}, which has {format_bytes(have[0])} available ({have[1]}). The biggest "
            f"parts: {estimate.biggest(host=which)}. Use a smaller train.batch_size "
            f"(--batch-size) or train.eval_batch_size, smaller layers, or a machine with more "
            f"memory.")
