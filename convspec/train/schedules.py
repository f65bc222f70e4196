"""Learning-rate schedules, computed once, in backend-neutral code.

The trainer asks ``schedule.learning_rate(t)`` before each optimizer step, where ``t`` is the
number of steps already taken (0 for the first step, as Keras passes ``optimizer.iterations``
to a ``LearningRateSchedule``), logs it and gives it to the backend's step
(``train_step(..., learning_rate=...)``), so no backend computes a schedule. Formulas
(``lr`` is the optimizer's ``learning_rate``):

* ``constant``:    ``lr``
* ``step``:        ``lr * gamma ** floor(t / step_size)``  (PyTorch ``StepLR`` stepped per
  iteration; Keras ``ExponentialDecay(staircase=True)``)
* ``exponential``: ``lr * decay_rate ** (t / decay_steps)``  (Keras ``ExponentialDecay``)
* ``cosine``:      warmup ``lr * (s + (1 - s) * t / W)`` for ``t < W``, then
  ``lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t - W, D) / D)) + alpha)``  (Keras
  ``CosineDecay`` with ``initial_learning_rate = s * lr``, ``warmup_target = lr``)
* ``reduce_on_plateau``: ``lr`` until a validation result says otherwise (Keras
  ``ReduceLROnPlateau``: see ``ReduceOnPlateau``).

A schedule with state (reduce-on-plateau) gives it to checkpoints (``state`` / ``restore``),
so a resumed run continues with exactly the rate an uninterrupted one has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..specification.training import (
    CosineSchedule,
    ExponentialSchedule,
    PlateauSchedule,
    StepSchedule,
)
from .monitor import Monitor


class LearningRateSchedule:
    """The rate of each step; stateless unless a subclass says otherwise."""

    kind = "constant"

    def __init__(self, base: float):
        self.base = base

    def learning_rate(self, step: int) -> float:
        """The rate of the step taken after ``step`` earlier steps (float, > 0 unless a warmup
        starts at 0)."""
        return self.base

    @property
    def constant(self) -> bool:
        """Whether every step has the optimizer's own rate."""
        return self.kind == "constant"

    def observe(self, metrics: Mapping[str, float]) -> None:
        """A validation result (``val_loss``, ``val_accuracy``); only plateau schedules care."""

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (what ``state()`` returned)."""


class StepDecay(LearningRateSchedule):
    kind = "step"

    def __init__(self, base: float, step_size: int, gamma: float):
        super().__init__(base)
        self.step_size, self.gamma = step_size, gamma

    def learning_rate(self, step: int) -> float:
        return self.base * self.gamma ** (step // self.step_size)


class ExponentialDecay(LearningRateSchedule):
    kind = "exponential"

    def __init__(self, base: float, decay_steps: int, decay_rate: float):
        super().__init__(base)
        self.decay_steps, self.decay_rate = decay_steps, decay_rate

    def learning_rate(self, step: int) -> float:
        return self.base * self.decay_rate ** (step / self.decay_steps)


class CosineDecay(LearningRateSchedule):
    kind = "cosine"

    def __init__(self, base: float, decay_steps: int, *, warmup_steps: int = 0,
                 warmup_start: float = 0.0, alpha: float = 0.0):
        super().__init__(base)
        self.decay_steps, self.warmup_steps = decay_steps, warmup_steps
        self.warmup_start, self.alpha = warmup_start, alpha

    def learning_rate(self, step: int) -> float:
        w, s = self.warmup_steps, self.warmup_start
        if step < w:
            return self.base * (s + (1.0 - s) * step / w)
        done = min(step - w, self.decay_steps) / self.decay_steps
        return self.base * ((1.0 - self.alpha) * 0.5 * (1.0 + math.cos(math.pi * done))
                            + self.alpha)


class ReduceOnPlateau(LearningRateSchedule):
    """Keras ``ReduceLROnPlateau`` at each validation: in cooldown, count it down and reset the
    wait; an improvement (``Monitor``) resets the wait; otherwise, out of cooldown, the wait
    grows and at ``patience`` the rate becomes ``max(lr * factor, min_lr)`` (if above
    ``min_lr``), starting ``cooldown``. Differs from PyTorch's, which reduces after
    ``patience + 1`` bad validations and compares relatively by default."""

    kind = "reduce_on_plateau"

    def __init__(self, base: float, monitor: Monitor, *, factor: float, patience: int,
                 cooldown: int = 0, min_lr: float = 0.0):
        super().__init__(base)
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.cooldown, self.min_lr = cooldown, min_lr
        self.current, self.best = base, None
        self.wait = self.cooldown_counter = 0

    def learning_rate(self, step: int) -> float:
        return self.current

    def observe(self, metrics: Mapping[str, float]) -> None:
        value = metrics.get(self.monitor.metric)
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor.improved(value, self.best):
            self.best, self.wait = value, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and self.current > self.min_lr:
                self.current = max(self.current * self.factor, self.min_lr)
                self.cooldown_counter, self.wait = self.cooldown, 0

    def state(self) -> dict[str, Any]:
        return {"lr": self.current, "best": self.best, "wait": self.wait,
                "cooldown_counter": self.cooldown_counter}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.current, self.best = float(state["lr"]), state["best"]
        self.wait, self.cooldown_counter = int(state["wait"]), int(state["cooldown_counter"])


def make_schedule(spec_train: Any, total_steps: int) -> LearningRateSchedule:
    """The schedule of a spec's ``train`` section for a run of ``total_steps`` optimizer steps
    (the default cosine ``decay_steps`` is the rest of the run after the warmup)."""
    base = spec_train.optimizer.learning_rate
    s = spec_train.schedule
    if isinstance(s, StepSchedule):
        return StepDecay(base, s.step_size, s.gamma)
    if isinstance(s, ExponentialSchedule):
        return ExponentialDecay(base, s.decay_steps, s.decay_rate)
    if isinstance(s, CosineSchedule):
        decay = s.decay_steps or max(total_steps - s.warmup_steps, 1)
        return CosineDecay(base, decay, warmup_steps=s.warmup_steps,
                           warmup_start=s.warmup_start, alpha=s.alpha)
    if isinstance(s, PlateauSchedule):
        return ReduceOnPlateau(base, Monitor(s.monitor, s.mode, s.min_delta), factor=s.factor,
                               patience=s.patience, cooldown=s.cooldown, min_lr=s.min_lr)
    return LearningRateSchedule(base)
