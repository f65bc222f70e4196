"""PyTorch backend: a spec compiled to an ``nn.Module`` running NCHW with TensorFlow numerics.

This module stays light (no torch import) so the registry can list and check backends without
paying for, or requiring, the framework; ``compile`` imports the heavy modules.

Layout: ``model.py`` builds the module (one submodule per layer), ``optim.py`` implements the
documented optimizers, ``compiled.py`` is the ``CompiledModel`` that converts between
convspec's canonical NumPy world (NHWC, HWIO, H-W-C flatten order) and torch at the edge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ...threads import choose_threads
from .. import check_device

if TYPE_CHECKING:
    from ...distributed import Parallel
    from ...specification import Spec
    from .compiled import TorchModel


class TorchBackend:
    """Factory of ``TorchModel`` s."""

    name = "torch"
    framework = "PyTorch"
    module = "torch"
    extra = "torch"

    def compile(self, spec: Spec, *, weights: Mapping[str, np.ndarray] | None = None,
                device: str = "cpu", parallel: Parallel | None = None,
                precision: str = "fp32", jit: bool = False) -> TorchModel:
        """Build the spec's model on ``device`` ("cpu", "cuda" or "auto"); with ``parallel``
        (a torchrun launch), join the process group and train under DistributedDataParallel;
        ``precision`` "bf16" / "fp16" computes under autocast (see convspec.precision);
        ``jit=True`` trains through ``torch.compile`` (compiled on the first step).
        Sets torch's intra-op (and, before any parallel work, inter-op) threads to
        ``convspec.threads.choose_threads()``: the cores free to this process.
        """
        check_device(device)
        threads = choose_threads().threads
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # fixed once parallel work has started
            torch.set_num_interop_threads(threads)
        from .compiled import TorchModel

        return TorchModel(spec, weights=weights, device=device, parallel=parallel,
                          precision=precision, jit=jit)

    def __repr__(self) -> str:
        return "TorchBackend()"


__all__ = ["TorchBackend"]
