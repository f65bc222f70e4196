"""TensorFlow backend: a spec compiled to raw ``tf.nn`` ops on ``tf.Variable`` s.

This module stays light (no TensorFlow import) so the registry can list and check backends
without paying for, or requiring, the framework; ``compile`` imports the heavy modules.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ...threads import choose_threads

if TYPE_CHECKING:
    from ...distributed import Parallel
    from ...specification import Spec
    from .compiled import TensorFlowModel


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ info/warning lines (unless the user chose a level)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class TensorFlowBackend:
    """Factory of ``TensorFlowModel`` s."""

    name = "tensorflow"
    framework = "TensorFlow"
    module = "tensorflow"
    extra = "tf"

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
        from .compiled import TensorFlowModel

        return TensorFlowModel(spec, weights=weights, device=device, jit=jit,
                               parallel=parallel, precision=precision)

    def __repr__(self) -> str:
        return "TensorFlowBackend()"


__all__ = ["TensorFlowBackend", "quiet_tensorflow"]
