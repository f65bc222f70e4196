"""One trainer for every backend: the loop, logging, validation, checkpoints, resume.

The backend only supplies ``train_step`` and ``predict``; everything a run means (data
order, the learning rate of each step, when to log and validate, what a checkpoint holds,
when to stop) is decided here, once, so the same spec and seed give the same run whichever
backend executes it, and a resumed run continues exactly as an uninterrupted one would.
What happens at each step, validation and record is also offered to callbacks
(``convspec.train.callbacks``): the metrics files, the best checkpoint, early stopping and
TensorBoard are callbacks.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import CompiledModel
from ..data.dataset import Dataset
from ..distributed import SINGLE
from ..errors import ConvspecError, FileSystemError, RunDirectoryError, WeightsError
from ..evaluation import evaluate
from ..run_directory import CHECKPOINT_FILE, Checkpoint, RunDirectory
from ..specification import Spec
from .callbacks import Callback, CallbackList, MetricsFiles
from .interrupts import Interrupted, TrainingDiverged, check_finite, stop_at_step_boundary
from .monitor import BestCheckpoint, EarlyStopping, Monitor
from .reporting import ProgressFactory, ProgressReporter, Window, quiet, tutorial_line
from .sampler import BatchSampler, total_iterations, validation_interval
from .schedules import make_schedule

__all__ = ["Interrupted", "ProgressFactory", "ProgressReporter", "TrainResult", "Trainer",
           "TrainingDiverged", "quiet"]


@dataclass
class TrainResult:
    iterations: int
    elapsed: float
    history: list[dict[str, Any]] = field(default_factory=list)
    val_accuracy: float | None = None
    first_step_seconds: float | None = None  # includes tracing / compilation (--compile)
    val_loss: float | None = None
    best: dict[str, Any] | None = None  # {"iteration", "monitor", "value"} of best.safetensors
    stopped_early: int | None = None  # the iteration at which early stopping ended the run


class Trainer:
    """Trains a compiled model on a dataset for the spec's number of iterations.

    ``run_dir`` (a ``RunDirectory``, or a path for a folder of training state only) receives
    checkpoints every ``checkpoint_every`` steps (default: the validation interval), the
    metrics files and ``best.safetensors``; ``log`` the tutorial's lines; ``progress`` each
    finished step and record; ``callbacks`` every hook of ``convspec.train.callbacks`` after
    the built-in ones (metrics files, best checkpoint, early stopping).
    Validation (loss and accuracy on ``data.validation``) runs every ``train.validate_every``
    steps and at the last one; each step's learning rate comes from the spec's schedule
    (``convspec.train.schedules``) and is given to ``model.train_step``. Early stopping
    without validation images is a ``ConvspecError``.
    In a data-parallel run (a model whose ``parallel`` spans several processes) every rank
    runs this same loop on its shard of each global batch; only the primary rank logs,
    validates, calls callbacks and writes files; its validation result and decision to stop
    are broadcast, so every rank's schedule sees the same results (same rates) and all ranks
    stop at the same step.
    """

    def __init__(self, spec: Spec, model: CompiledModel, data: Dataset, *,
                 run_dir: RunDirectory | str | os.PathLike[str] | None = None,
                 checkpoint_every: int | None = None, log: Callable[[str], None] = print,
                 progress: ProgressReporter | None = None, callbacks: Iterable[Callback] = ()):
        self.spec, self.model, self.data = spec, model, data
        t = spec.train
        # where checkpoints and metrics go; a plain path is a folder of training state only
        self.run = (run_dir if run_dir is None or isinstance(run_dir, RunDirectory)
                    else RunDirectory(run_dir))
        self.parallel = getattr(model, "parallel", SINGLE)
        self.primary = self.parallel.is_primary
        self.shard = (self.parallel.shard(t.batch_size) if self.parallel.processes > 1 else None)
        self.sampler = BatchSampler(len(data.train), t.batch_size, t.seed)
        self.iterations = total_iterations(spec, len(data.train))
        self.validate_every = validation_interval(spec, len(data.train))
        self.checkpoint_every = checkpoint_every or self.validate_every
        self.schedule = make_schedule(t, self.iterations)
        self.log = log if self.primary else quiet
        self.progress = progress
        self.iteration = 0
        self.elapsed_before = 0.0
        self.last_good: int | None = None
        self.resumed_from: int | None = None  # the checkpoint's iteration, once resumed
        self.lr = self.schedule.learning_rate(0)
        self.val_accuracy: float | None = None
        self.val_loss: float | None = None
        self.first_step_seconds: float | None = None
        self.stop_training = False  # set by a callback (early stopping) to end after this step
        self.history: list[dict[str, Any]] = []
        self.window = Window()
        has_val = len(data.validation) > 0
        if t.early_stopping is not None and not has_val:
            raise ConvspecError("train.early_stopping watches the validation set, but it is "
                                "empty (train.validation_size 0?)")
        self.best = BestCheckpoint(Monitor(t.best.monitor, t.best.mode)) if has_val else None
        self.early_stopping = None if t.early_stopping is None else EarlyStopping(
            Monitor(t.early_stopping.monitor, t.early_stopping.mode, t.early_stopping.min_delta),
            t.early_stopping.patience)
        built_in = [MetricsFiles(), self.best, self.early_stopping]
        self.callbacks = CallbackList([*(c for c in built_in if c is not None), *callbacks])

    @property
    def run_dir(self) -> Path | None:
        return None if self.run is None else self.run.path

    # -- resume -------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from the run directory's checkpoint, exactly where it stopped (the
        checkpoint is checked against the spec first: ``WeightsError``)."""
        if self.run is None:
            raise ConvspecError("Trainer.resume() needs a run directory (run_dir=...)")
        ckpt = self.run.load_checkpoint(self.spec)
        try:
            self.sampler.restore(ckpt.sampler)
        except ValueError as exc:
            raise WeightsError(f"{self.run.path / CHECKPOINT_FILE}: cannot resume from this "
                               f"checkpoint ({exc})") from None
        self.model.set_weights(ckpt.weights)
        self.model.set_optimizer_state(ckpt.optimizer)
        self.iteration, self.elapsed_before = ckpt.iteration, ckpt.elapsed
        self.last_good = self.resumed_from = ckpt.iteration
        self._restore(ckpt.state)
        if self.primary:  # the checkpoint is good: now the directory may change
            self.run.remove_temporaries()
            try:
                self.history = self.run.read_metrics(keep_until=ckpt.iteration)
            except RunDirectoryError:  # no metrics file yet
                self.history = []
        self.log(f"Resuming {self.run_dir} at iteration {ckpt.iteration} of {self.iterations}")
        if self.stop_training:
            self.log(f"(the run stopped early at iteration {ckpt.iteration}; nothing to train)")

    def _state(self) -> dict[str, dict[str, Any]]:
        own = {"window": self.window.state(), "lr": self.lr, "val_loss": self.val_loss,
               "val_accuracy": self.val_accuracy, "stop_training": self.stop_training}
        return {"trainer": own, "schedule": self.schedule.state(), **self.callbacks.states()}

    def _restore(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        own = state.get("trainer")
        if own:  # checkpoints of older versions hold no loop state
            self.window.restore(own["window"])
            self.lr, self.stop_training = float(own["lr"]), bool(own["stop_training"])
            self.val_loss, self.val_accuracy = own["val_loss"], own["val_accuracy"]
        if state.get("schedule"):
            self.schedule.restore(state["schedule"])
        self.callbacks.restore(state)

    # -- the loop -----------------------------------------------------------------------
    def fit(self, until: int | None = None) -> TrainResult:
        """Train up to iteration ``until`` (default: the spec's total), continuing from where
        the last call stopped, like the tutorial's ``optimize``; Ctrl-C checkpoints at a step
        boundary and stops; early stopping ends the run after the validation that decides."""
        if until is not None:
            self.iterations = until
        self._call("on_train_begin")
        start = time.perf_counter()
        with stop_at_step_boundary() as stop:
            try:
                stopped = self._loop(stop, start)
            except FileSystemError as exc:  # a full disk, a read-only run directory, ...
                if self.progress is not None:
                    self.progress.close()
                raise FileSystemError(f"{exc}; training stopped at iteration "
                                      f"{self.iteration}, {self._kept()}") from None
            except KeyboardInterrupt:  # a second Ctrl-C: the step may be half applied
                if self.progress is not None:
                    self.progress.close()
                raise Interrupted(f"interrupted during iteration {self.iteration + 1}; "
                                  f"{self._kept()}") from None
            if stopped:
                where = self._interrupt(self._elapsed(start))
                raise Interrupted(f"interrupted at iteration {self.iteration}; {where}")
        elapsed = self._elapsed(start)
        if self.progress is not None:
            self.progress.close()
        if self.run is not None:
            self.checkpoint(elapsed)
        this_call = time.perf_counter() - start
        self.elapsed_before = elapsed
        self.log(f"Time usage: {timedelta(seconds=int(round(this_call)))}")
        stopped_early = (self.early_stopping.stopped_at if self.early_stopping else None)
        result = TrainResult(self.iteration, elapsed, list(self.history), self.val_accuracy,
                             self.first_step_seconds, self.val_loss,
                             self.best.summary() if self.best else None, stopped_early)
        self._call("on_run_end", result)
        return result

    def _call(self, hook: str, *args: Any) -> None:
        if self.primary:
            self.callbacks.call(hook, self, *args)

    def _kept(self) -> str:
        if self.last_good is None:
            return "no checkpoint was written"
        return (f"the checkpoint of iteration {self.last_good} is kept (continue with: "
                f"convspec train --resume {self.run_dir})")

    def _elapsed(self, start: float) -> float:
        return self.elapsed_before + time.perf_counter() - start

    def _stopping(self, stop: threading.Event) -> bool:
        """Whether to stop before the next step; every rank of a parallel run agrees."""
        if self.parallel.processes > 1:
            return self.model.any_rank(stop.is_set())  # type: ignore[attr-defined]
        return stop.is_set()

    def _loop(self, stop: threading.Event, start: float) -> bool:
        """Steps until the end, early stopping or a stop request; True when interrupted."""
        train = self.data.train
        while self.iteration < self.iterations and not self.stop_training:
            if self._stopping(stop):
                return True
            idx = self.sampler.next()
            if self.shard is not None:  # this rank's part of the global batch
                idx = idx[self.shard]
            self.lr = self.schedule.learning_rate(self.iteration)
            began = time.perf_counter()
            # every step's loss and accuracy: the records hold means over their window
            result = self.model.train_step(train.images[idx], train.labels[idx], fetch=True,
                                           learning_rate=self.lr)
            if self.first_step_seconds is None:
                self.first_step_seconds = time.perf_counter() - began
            self.iteration += 1
            if self.progress is not None:
                self.progress.update(1)
            assert result is not None
            check_finite(result.loss, self.iteration, self.last_good, self.run_dir)
            self.window.add(result.loss, result.accuracy)
            self._call("on_step_end", {"iteration": self.iteration, "lr": self.lr,
                                       "loss": result.loss, "accuracy": result.accuracy})
            self._record(start)
            if self.run is not None and (self.iteration % self.checkpoint_every == 0
                                         or self.stop_training):
                self.checkpoint(self._elapsed(start))
        return False

    def _record(self, start: float) -> None:
        """At a log step, a validation step or the last step: one metrics record."""
        it, t = self.iteration, self.spec.train
        logged = (it - 1) % t.log_every == 0  # 1, 101, 201 ... as in the tutorial
        validated = it % self.validate_every == 0 or it == self.iterations
        if not (logged or validated):
            return
        record: dict[str, Any] = {"iteration": it, **self.window.means(), "val_loss": None,
                                  "val_accuracy": None, "lr": self.lr,
                                  "elapsed": round(self._elapsed(start), 3)}
        if logged:  # a validation in between does not cut the logging window short
            self.log(tutorial_line(it, record["train_accuracy"]))
            self.window.reset()
        if validated:
            self._validate(record)
        if self.primary:
            self.history.append(record)
            if self.progress is not None:
                self.progress.metrics(record)
            self._call("on_metrics", record)

    def _validate(self, record: dict[str, Any]) -> None:
        val = self.data.validation
        logs: dict[str, Any] | None = None
        if self.primary and len(val):
            ev = evaluate(self.model, val, self.spec.train.eval_batch_size)
            self.val_loss, self.val_accuracy = ev.loss, ev.accuracy
            record.update(val_loss=ev.loss, val_accuracy=ev.accuracy)
            self.log(f"Validation Accuracy after iteration {self.iteration}: {ev.accuracy:.1%} "
                     f"({ev.correct} / {ev.total}), Validation Loss: {ev.loss:.4f}")
            logs = {"iteration": self.iteration, "val_loss": ev.loss,
                    "val_accuracy": ev.accuracy}
            self._call("on_validation_end", logs)
        if self.parallel.processes > 1:  # every rank: the primary's result and decision
            stop, loss, accuracy = self.model.broadcast(  # type: ignore[attr-defined]
                [float(self.stop_training), *((logs["val_loss"], logs["val_accuracy"])
                                              if logs else (math.nan, math.nan))])
            self.stop_training = bool(stop)
            logs = None if math.isnan(loss) else {"iteration": self.iteration,
                                                  "val_loss": loss, "val_accuracy": accuracy}
        if logs is not None:  # a plateau schedule's next rates, the same on every rank
            self.schedule.observe(logs)

    def checkpoint(self, elapsed: float) -> bool:
        """Save the full training state unless the weights are no longer finite (primary
        rank only: the other ranks hold the same weights)."""
        assert self.run is not None
        if not self.primary:
            return False
        weights = self.model.get_weights()
        if not all(np.isfinite(w).all() for w in weights.values()):
            return False
        self.run.save_checkpoint(self.spec, Checkpoint(
            self.iteration, weights, self.model.optimizer_state(), self.sampler.state(), elapsed,
            self._state()))
        self.last_good = self.iteration
        return True

    def _interrupt(self, elapsed: float) -> str:
        if self.progress is not None:
            self.progress.close()
        if not self.primary:
            return f"rank {self.parallel.rank} stopped with rank 0, which saves the checkpoint"
        if self.run is None:
            return "nothing was saved (no run directory)"
        if self.checkpoint(elapsed):
            return (f"checkpoint saved; continue with: convspec train --resume {self.run_dir}")
        return f"weights were not finite; the checkpoint of iteration {self.last_good} is kept"
