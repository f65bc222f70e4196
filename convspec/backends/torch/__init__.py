"""PyTorch backend: a spec compiled to an ``nn.Module`` running NCHW with TensorFlow numerics.

This module stays light (no torch import) so the registry can list and check backends without
paying for, or requiring, the framework; ``compile`` imports the heavy modules.

The same modules as the TensorFlow backend, in the same order: ``ops.py`` (one op per layer
kind, dropout masks, loss, accuracy), ``network.py`` (the weights and the forward walk over the
spec's layers), ``optimizers.py``, ``precision.py`` (compute type, fp16 loss scale),
``devices.py`` (devices, torchrun + DistributedDataParallel), ``model.py`` (``TorchModel``, the
framework part of ``backends.base.BaseModel``); and, because torch runs NCHW, ``layout.py``
(canonical <-> torch layouts).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ...allocator import keep_freed_memory
from ...distributed import SINGLE, Parallel, from_torchrun, launch_torchrun
from ...errors import UsageError
from ...layers import LAYER_KINDS
from ...threads import choose_threads
from .. import check_device
from ..support import FEATURES

if TYPE_CHECKING:
    from ...specification import Spec
    from .model import TorchModel


class TorchBackend:
    """Factory of ``TorchModel`` s."""

    name = "torch"
    framework = "PyTorch"
    module = "torch"
    extra = "torch"
    layer_kinds = frozenset(LAYER_KINDS)  # every kind and feature of convspec.backends.support
    features = frozenset(FEATURES)

    def compile(self, spec: Spec, *, weights: Mapping[str, np.ndarray] | None = None,
                device: str = "cpu", parallel: Parallel | None = None,
                precision: str = "fp32", jit: bool = False) -> TorchModel:
        """Build the spec's model on ``device`` ("cpu", "cuda" or "auto"); with ``parallel``
        (a torchrun launch), join the process group and train under DistributedDataParallel;
        ``precision`` "bf16" / "fp16" computes under autocast (see convspec.precision);
        ``jit=True`` trains through ``torch.compile`` (compiled on the first step).
        Sets torch's intra-op (and, before any parallel work, inter-op) threads to
        ``convspec.threads.choose_threads()``: the cores free to this process; and keeps
        the host memory a step frees for the next step (``convspec.allocator``).
        """
        check_device(device)
        threads = choose_threads().threads
        keep_freed_memory()
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # fixed once parallel work has started
            torch.set_num_interop_threads(threads)
        from .model import TorchModel

        return TorchModel(spec, weights=weights, device=device, parallel=parallel,
                          precision=precision, jit=jit)

    def parallel_layout(self, nproc: int, env: Mapping[str, str]) -> Parallel:
        """One process per device under torchrun (its environment), else a single process."""
        if nproc > 1:
            raise UsageError(f"the torch backend trains on {nproc} processes under torchrun: "
                             f"use `convspec train ... --nproc {nproc}` (which starts torchrun) "
                             f"or `torchrun --nproc-per-node {nproc} -m convspec train ...`")
        return from_torchrun(env) or SINGLE

    def launch(self, nproc: int, argv: list[str]) -> int | None:
        """``nproc > 1``: start ``convspec <argv>`` on ``nproc`` processes under torchrun."""
        return launch_torchrun(nproc, argv) if nproc > 1 else None

    def device_memory(self, device: str) -> tuple[int, str] | None:
        """(free bytes, where from) of the GPU ``device`` trains on; None on the CPU."""
        from .devices import free_memory

        return free_memory(device)

    def __repr__(self) -> str:
        return "TorchBackend()"


__all__ = ["TorchBackend"]
