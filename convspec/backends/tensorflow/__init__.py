"""TensorFlow backend: a spec compiled to raw ``tf.nn`` ops on ``tf.Variable`` s.

This module stays light (no TensorFlow import) so the registry can list and check backends
without paying for, or requiring, the framework; ``compile`` imports the heavy modules.

The same modules as the torch backend, in the same order: ``ops.py`` (one op per layer kind,
dropout masks, loss, accuracy), ``network.py`` (the weights and the forward walk over the
spec's layers), ``optimizers.py``, ``precision.py`` (compute type, fp16 loss scale),
``devices.py`` (devices, MirroredStrategy / MultiWorkerMirroredStrategy), ``model.py``
(``TensorFlowModel``, the framework part of ``backends.base.BaseModel``). TensorFlow speaks
the canonical layout, so there is no ``layout.py``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ...distributed import SINGLE, Parallel, from_tf_config, from_torchrun
from ...errors import UsageError
from ...layers import LAYER_KINDS
from ...threads import choose_threads
from ..support import FEATURES

if TYPE_CHECKING:
    from ...specification import Spec
    from .model import TensorFlowModel


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ info/warning lines (unless the user chose a level)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class TensorFlowBackend:
    """Factory of ``TensorFlowModel`` s."""

    name = "tensorflow"
    framework = "TensorFlow"
    module = "tensorflow"
    extra = "tf"
    layer_kinds = frozenset(LAYER_KINDS)  # every kind and feature of convspec.backends.support
    features = frozenset(FEATURES)

    def compile(self, spec: Spec, *, weights: Mapping[str, np.ndarray] | None = None,
                device: str = "cpu", jit: bool = False,
                parallel: Parallel | None = None, precision: str = "fp32") -> TensorFlowModel:
        """Build the spec's model on ``device``; ``jit=True`` compiles its functions with XLA;
        ``parallel`` replicates it with MirroredStrategy (local devices) or
        MultiWorkerMirroredStrategy (a TF_CONFIG cluster); ``precision`` "bf16" / "fp16"
        computes in 16 bits (see convspec.precision). The first compile in a process sets
        TensorFlow's intra- and inter-op threads to the cores this process may use
        (``convspec.threads``: affinity, cgroup quota, ``--threads``; other processes' load
        is left out, unlike for torch: TensorFlow's thread pool shares work dynamically and
        lost less to a busy core than one thread did, see benchmarks/README.md); they cannot
        change once TensorFlow has started."""
        quiet_tensorflow()
        threads = choose_threads().cores
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # already started: its pools stay as they are
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        from .model import TensorFlowModel

        return TensorFlowModel(spec, weights=weights, device=device, jit=jit,
                               parallel=parallel, precision=precision)

    def parallel_layout(self, nproc: int, env: Mapping[str, str]) -> Parallel:
        """One process per host: a TF_CONFIG cluster (MultiWorkerMirroredStrategy) and/or
        ``nproc`` local replicas (MirroredStrategy), else a single device."""
        torchrun = from_torchrun(env)
        if torchrun is not None and torchrun.processes > 1:
            raise UsageError("torchrun started this process, but the tensorflow backend does "
                             "not train under torchrun; for tensorflow use --nproc N (N local "
                             "devices, MirroredStrategy) or TF_CONFIG "
                             "(MultiWorkerMirroredStrategy)")
        cluster = from_tf_config(env)
        if cluster is not None:
            return Parallel(processes=cluster.processes, rank=cluster.rank,
                            local_devices=nproc, launcher="tf_config")
        if nproc > 1:
            return Parallel(local_devices=nproc, launcher="local")
        return SINGLE

    def launch(self, nproc: int, argv: list[str]) -> int | None:
        """None: one process drives every local replica."""
        return None

    def device_memory(self, device: str) -> tuple[int, str] | None:
        """(free bytes, where from) of the GPU ``device`` trains on; None on the CPU."""
        quiet_tensorflow()
        from .devices import free_memory

        return free_memory(device)

    def __repr__(self) -> str:
        return "TensorFlowBackend()"


__all__ = ["TensorFlowBackend", "quiet_tensorflow"]
