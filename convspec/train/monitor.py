"""Callbacks that watch a validation metric: early stopping and the best checkpoint.

Both follow Keras: ``EarlyStopping`` (patience counted in validations, an improvement must
beat the best by more than ``min_delta``) and ``ModelCheckpoint(save_best_only=True)`` (the
weights whenever the metric is strictly better). Their state, the best weights included,
is kept in every checkpoint, so a resumed run keeps the same best and stops at the same
iteration as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .callbacks import Callback

if TYPE_CHECKING:
    from .trainer import Trainer


@dataclass(frozen=True)
class Monitor:
    """One validation metric and which way is better.

    ``mode`` ``auto`` means ``max`` for ``val_accuracy`` and ``min`` otherwise (Keras: "max"
    when the name contains "acc"). ``improved(value, best)``: ``value < best - min_delta``
    (min) or ``value > best + min_delta`` (max); always True while there is no best yet.
    """

    metric: str
    mode: str = "auto"
    min_delta: float = 0.0

    @property
    def direction(self) -> str:
        if self.mode != "auto":
            return self.mode
        return "max" if "acc" in self.metric else "min"

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        if self.direction == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta


class EarlyStopping(Callback):
    """Keras ``EarlyStopping`` at each validation: ``wait`` grows by one, an improvement
    resets it (and becomes the best), and when ``wait >= patience`` (never at the first
    validation) the trainer stops after this step."""

    state_key = "early_stopping"

    def __init__(self, monitor: Monitor, patience: int):
        self.monitor, self.patience = monitor, patience
        self.best: float | None = None
        self.best_iteration: int | None = None
        self.wait = self.validations = 0
        self.stopped_at: int | None = None

    def on_validation_end(self, trainer: Trainer, logs: Mapping[str, Any]) -> None:
        value = logs.get(self.monitor.metric)
        if value is None:
            return
        self.validations += 1
        self.wait += 1
        if self.monitor.improved(value, self.best):
            self.best, self.best_iteration, self.wait = value, int(logs["iteration"]), 0
            return
        if self.wait >= self.patience and self.validations > 1:
            self.stopped_at = int(logs["iteration"])
            trainer.stop_training = True
            trainer.log(f"Early stopping at iteration {self.stopped_at}: "
                        f"{self.monitor.metric} has not improved by more than "
                        f"{self.monitor.min_delta:g} for {self.wait} validation(s) (best "
                        f"{self.best:.4f} at iteration {self.best_iteration})")

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_iteration": self.best_iteration, "wait": self.wait,
                "validations": self.validations, "stopped_at": self.stopped_at}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_iteration = state["best"], state["best_iteration"]
        self.wait, self.validations = int(state["wait"]), int(state["validations"])
        self.stopped_at = state["stopped_at"]


class BestCheckpoint(Callback):
    """Keeps the weights of the best validation result: in memory (and in every checkpoint)
    and, with a run directory, as ``best.safetensors`` (its iteration and metric in the
    file's metadata). A resumed run rewrites that file from the checkpoint, so it never holds
    weights of steps the resumed run has not yet redone."""

    state_key = "best"

    def __init__(self, monitor: Monitor):
        self.monitor = monitor
        self.value: float | None = None
        self.iteration: int | None = None
        self.weights: dict[str, np.ndarray] | None = None
        self._restored = False

    def on_train_begin(self, trainer: Trainer) -> None:
        if self._restored and self.weights is not None:
            self._write(trainer)
        self._restored = False

    def on_validation_end(self, trainer: Trainer, logs: Mapping[str, Any]) -> None:
        value = logs.get(self.monitor.metric)
        if value is None or not self.monitor.improved(value, self.value):
            return
        self.value, self.iteration = float(value), int(logs["iteration"])
        self.weights = trainer.model.get_weights()
        self._write(trainer)

    def summary(self) -> dict[str, Any] | None:
        """``{"iteration", "monitor", "value"}`` of the best result so far, or None."""
        if self.iteration is None:
            return None
        return {"iteration": self.iteration, "monitor": self.monitor.metric, "value": self.value}

    def _write(self, trainer: Trainer) -> None:
        if trainer.run is not None and self.weights is not None:
            trainer.run.save_best_weights(self.weights, trainer.spec, {
                "iteration": str(self.iteration), "monitor": self.monitor.metric,
                "value": repr(self.value)})

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"value": self.value, "iteration": self.iteration}
        for name, array in (self.weights or {}).items():
            state[f"weights/{name}"] = array
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        self.value, self.iteration = state["value"], state["iteration"]
        weights = {k[len("weights/"):]: np.asarray(v) for k, v in state.items()
                   if k.startswith("weights/")}
        self.weights = weights or None
        self._restored = True
