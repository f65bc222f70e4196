"""Training: the shared loop and what ``convspec train`` does as a library call.

* ``trainer`` - ``Trainer``, the backend-neutral loop (logging, validation, checkpoints,
  resume, NaN and Ctrl-C handling) and the ``ProgressReporter`` protocol it reports through;
* ``sampler`` - ``BatchSampler``, the seeded, resumable order of training images;
* ``options`` - ``TrainOptions`` (the command's options), ``apply_overrides`` and
  ``plan_training`` (options -> ``TrainPlan``, resume policy included);
* ``run``     - ``run_training``: plan, load, compile, train, evaluate, write the run.
"""

from __future__ import annotations

from .options import TrainOptions, TrainPlan, apply_overrides, plan_training
from .run import TrainOutcome, run_training
from .sampler import BatchSampler, total_iterations
from .trainer import (
    Interrupted,
    ProgressFactory,
    ProgressReporter,
    Trainer,
    TrainingDiverged,
    TrainResult,
    quiet,
)

__all__ = [
    "BatchSampler",
    "Interrupted",
    "ProgressFactory",
    "ProgressReporter",
    "TrainOptions",
    "TrainOutcome",
    "TrainPlan",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "apply_overrides",
    "plan_training",
    "quiet",
    "run_training",
    "total_iterations",
]
