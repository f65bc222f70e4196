"""Training: the shared loop and what ``convspec train`` does as a library call.

* ``trainer`` - ``Trainer``, the backend-neutral loop (logging, validation, checkpoints,
  resume, NaN and Ctrl-C handling);
* ``reporting`` - the tutorial's lines, the logging window, the ``ProgressReporter`` protocol;
* ``callbacks`` - the ``Callback`` hooks of the loop, and the metrics files callback;
* ``monitor`` - callbacks watching a validation metric: ``EarlyStopping``, ``BestCheckpoint``;
* ``schedules`` - learning-rate schedules (constant, step, exponential, cosine, plateau);
* ``tensorboard_log`` - ``TensorBoard``, the event-file callback;
* ``interrupts`` - Ctrl-C at a step boundary, ``Interrupted``, ``TrainingDiverged``;
* ``sampler`` - ``BatchSampler``, the seeded, resumable order of training images;
* ``options`` - ``TrainOptions`` (the command's options), ``apply_overrides`` and
  ``plan_training`` (options -> ``TrainPlan``, resume policy included);
* ``run``     - ``run_training``: plan, load, compile, train, evaluate, write the run.
"""

from __future__ import annotations

from .callbacks import Callback
from .interrupts import Interrupted, TrainingDiverged
from .monitor import BestCheckpoint, EarlyStopping, Monitor
from .options import TrainOptions, TrainPlan, apply_overrides, plan_training
from .run import TrainOutcome, run_training
from .sampler import BatchSampler, total_iterations, validation_interval
from .schedules import LearningRateSchedule, make_schedule
from .tensorboard_log import TensorBoard
from .trainer import ProgressFactory, ProgressReporter, Trainer, TrainResult, quiet

__all__ = [
    "BatchSampler",
    "BestCheckpoint",
    "Callback",
    "EarlyStopping",
    "Interrupted",
    "LearningRateSchedule",
    "Monitor",
    "ProgressFactory",
    "ProgressReporter",
    "TensorBoard",
    "TrainOptions",
    "TrainOutcome",
    "TrainPlan",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "apply_overrides",
    "make_schedule",
    "plan_training",
    "quiet",
    "run_training",
    "total_iterations",
    "validation_interval",
]
