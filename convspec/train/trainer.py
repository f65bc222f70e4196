"""One trainer for every backend: the loop, logging, validation, checkpoints, resume.

The backend only supplies ``train_step`` and ``predict``; everything a run means (data
order, when to log, what a checkpoint holds) is decided here, once, so the same spec and
seed give the same run whichever backend executes it, and a resumed run continues exactly
as an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..backends import CompiledModel
from ..data.dataset import Dataset, Split
from ..distributed import SINGLE
from ..errors import ConvspecError, FileSystemError, WeightsError
from ..evaluation import evaluate
from ..run_directory import CHECKPOINT_FILE, Checkpoint, MetricsLog, RunDirectory
from ..specification import Spec
from .sampler import BatchSampler, total_iterations


class TrainingDiverged(ConvspecError):
    """The loss became NaN or infinite."""


class Interrupted(ConvspecError):
    """Ctrl-C during training; a checkpoint was saved."""

    exit_code = 130


class ProgressReporter(Protocol):
    """What the Trainer tells a progress display (the CLI's bar is one): steps as they finish,
    the log lines (printed above the display), and the end."""

    def update(self, steps: int) -> None: ...

    def log(self, message: str) -> None: ...

    def close(self) -> None: ...


# Makes the display of a run: (total steps, steps already done) -> reporter.
ProgressFactory = Callable[[int, int], ProgressReporter]


@dataclass
class TrainResult:
    iterations: int
    elapsed: float
    history: list[dict[str, Any]] = field(default_factory=list)
    val_accuracy: float | None = None
    first_step_seconds: float | None = None  # includes tracing / compilation (--compile)


@contextlib.contextmanager
def _stop_at_step_boundary() -> Any:
    """The first Ctrl-C sets a flag checked between steps (so a checkpoint never holds a
    half-applied update); a second one interrupts at once. Signals within a second of the
    first count as the same press: under torchrun a worker gets the terminal's SIGINT and
    the one torchrun forwards."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    first: list[float] = []

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            if time.monotonic() - first[0] > 1.0:
                raise KeyboardInterrupt
            return
        first.append(time.monotonic())
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def quiet(msg: str) -> None:
    """The log of a non-primary rank: nothing."""


def _tutorial_line(iteration: int, accuracy: float) -> str:
    return f"Optimization Iteration: {iteration:>6}, Training Accuracy: {accuracy:>6.1%}"


class Trainer:
    """Trains a compiled model on a dataset for the spec's number of iterations.

    ``run_dir`` (a ``RunDirectory``, or a path for a folder of training state only) receives
    checkpoints every ``checkpoint_every`` steps (default ``train.validate_every``) and the
    metrics; ``log`` the tutorial's lines; ``progress`` each finished step.
    In a data-parallel run (a model whose ``parallel`` spans several processes) every rank
    runs this same loop on its shard of each global batch; only the primary rank logs,
    validates, writes metrics and checkpoints, and all ranks stop at the same step.
    """

    def __init__(self, spec: Spec, model: CompiledModel, data: Dataset, *,
                 run_dir: RunDirectory | str | os.PathLike[str] | None = None,
                 checkpoint_every: int | None = None, log: Callable[[str], None] = print,
                 progress: ProgressReporter | None = None):
        self.spec, self.model, self.data = spec, model, data
        # where checkpoints and metrics go; a plain path is a folder of training state only
        self.run = (run_dir if run_dir is None or isinstance(run_dir, RunDirectory)
                    else RunDirectory(run_dir))
        self.parallel = getattr(model, "parallel", SINGLE)
        self.primary = self.parallel.is_primary
        self.shard = (self.parallel.shard(spec.train.batch_size)
                      if self.parallel.processes > 1 else None)
        self.sampler = BatchSampler(len(data.train), spec.train.batch_size, spec.train.seed)
        self.iterations = total_iterations(spec, len(data.train))
        self.checkpoint_every = checkpoint_every or spec.train.validate_every
        self.log = log if self.primary else quiet
        self.progress = progress
        self.iteration = 0
        self.elapsed_before = 0.0
        self.last_good: int | None = None
        self.val_accuracy: float | None = None
        self.first_step_seconds: float | None = None
        self.metrics: MetricsLog | None = None  # opened by resume() or the first fit()

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
        self.last_good = ckpt.iteration
        if self.primary:  # the checkpoint is good: now the directory may change
            self.run.remove_temporaries()
            self.metrics = self.run.metrics_log(keep_until=ckpt.iteration)
        self.log(f"Resuming {self.run_dir} at iteration {ckpt.iteration} of {self.iterations}")

    # -- the loop -----------------------------------------------------------------------
    def fit(self, until: int | None = None) -> TrainResult:
        """Train up to iteration ``until`` (default: the spec's total), continuing from where
        the last call stopped, like the tutorial's ``optimize``; Ctrl-C checkpoints at a step
        boundary and stops."""
        if until is not None:
            self.iterations = until
        if self.metrics is None and self.run is not None and self.primary:
            self.metrics = self.run.metrics_log()
        start = time.perf_counter()
        with _stop_at_step_boundary() as stop:
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
        history = self.metrics.records if self.metrics else []
        return TrainResult(self.iteration, elapsed, history, self.val_accuracy,
                           self.first_step_seconds)

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
        """Steps until the end or a stop request; True when stopped early."""
        train, t = self.data.train, self.spec.train
        while self.iteration < self.iterations:
            if self._stopping(stop):
                return True
            idx = self.sampler.next()
            if self.shard is not None:  # this rank's part of the global batch
                idx = idx[self.shard]
            i = self.iteration  # 0-based, as in the tutorial's loop
            fetch = (i % t.log_every == 0 or (i + 1) % t.validate_every == 0
                     or i + 1 == self.iterations)
            began = time.perf_counter()
            result = self.model.train_step(train.images[idx], train.labels[idx], fetch=fetch)
            if self.first_step_seconds is None:
                self.first_step_seconds = time.perf_counter() - began
            self.iteration += 1
            if self.progress is not None:
                self.progress.update(1)
            if fetch:
                assert result is not None
                self._check_finite(result.loss)
                self._record(i, result, self._elapsed(start))
            if self.run is not None and self.iteration % self.checkpoint_every == 0:
                self.checkpoint(self._elapsed(start))
        return False

    def _record(self, i: int, result: Any, elapsed: float) -> None:
        t = self.spec.train
        record = {"iteration": self.iteration, "loss": result.loss,
                  "train_accuracy": result.accuracy, "val_accuracy": None,
                  "elapsed": round(elapsed, 3)}
        if i % t.log_every == 0:
            self.log(_tutorial_line(self.iteration, result.accuracy))
        if self.primary and (self.iteration % t.validate_every == 0
                             or self.iteration == self.iterations):
            self.val_accuracy = self._validate(record)
        if self.metrics:
            self.metrics.append(record)

    def _validate(self, record: dict[str, Any]) -> float | None:
        val: Split = self.data.validation
        if len(val) == 0:
            return None
        ev = evaluate(self.model, val, self.spec.train.eval_batch_size)
        record["val_accuracy"] = ev.accuracy
        self.log(f"Validation Accuracy after iteration {self.iteration}: {ev.accuracy:.1%} "
                 f"({ev.correct} / {ev.total})")
        return ev.accuracy

    def _check_finite(self, loss: float) -> None:
        if math.isfinite(loss):
            return
        if self.run is not None and self.last_good is not None:
            kept = (f"the last good checkpoint (iteration {self.last_good}) is kept in "
                    f"{self.run_dir}")
        else:
            kept = "no checkpoint was written yet"
        raise TrainingDiverged(
            f"the loss became {loss} at iteration {self.iteration}; training stopped and "
            f"{kept}. Try a smaller learning rate (--lr) or check the input data."
        )

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
            self.iteration, weights, self.model.optimizer_state(), self.sampler.state(), elapsed))
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
