"""What the training loop reports, and how: the tutorial's lines, the logging window whose
means they print, and the ``ProgressReporter`` protocol a progress display implements."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol


class ProgressReporter(Protocol):
    """What the Trainer tells a progress display (the CLI's bar is one): steps as they finish,
    each metrics record (``loss``, ``train_accuracy``, ``lr``, ``val_*``), the log lines
    (printed above the display), and the end."""

    def update(self, steps: int) -> None: ...

    def metrics(self, record: Mapping[str, Any]) -> None: ...

    def log(self, message: str) -> None: ...

    def close(self) -> None: ...


# Makes the display of a run: (total steps, steps already done) -> reporter.
ProgressFactory = Callable[[int, int], ProgressReporter]


def quiet(msg: str) -> None:
    """The log of a non-primary rank: nothing."""


def tutorial_line(iteration: int, accuracy: float) -> str:
    """``Optimization Iteration:    101, Training Accuracy:  62.5%`` (the tutorial's words)."""
    return f"Optimization Iteration: {iteration:>6}, Training Accuracy: {accuracy:>6.1%}"


class Window:
    """Sums of the training loss and accuracy since the last log line (``log_every``)."""

    def __init__(self) -> None:
        self.reset()

    def add(self, loss: float, accuracy: float) -> None:
        self.loss, self.accuracy, self.steps = (self.loss + loss, self.accuracy + accuracy,
                                                self.steps + 1)

    def means(self) -> dict[str, float]:
        """The means of the window so far (``loss``, ``train_accuracy``)."""
        return {"loss": self.loss / self.steps, "train_accuracy": self.accuracy / self.steps}

    def reset(self) -> None:
        self.restore({"loss": 0.0, "accuracy": 0.0, "steps": 0})

    def state(self) -> dict[str, Any]:
        return {"loss": self.loss, "accuracy": self.accuracy, "steps": self.steps}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.loss, self.accuracy = float(state["loss"]), float(state["accuracy"])
        self.steps = int(state["steps"])
