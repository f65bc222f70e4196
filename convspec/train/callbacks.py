"""The Trainer's callback interface (Keras / Lightning style) and the metrics files callback.

A ``Callback`` overrides the hooks it needs; the trainer calls them in this order:

* ``on_train_begin(trainer)`` - each ``fit()`` call starts (``trainer.resumed_from`` says
  whether it continues a checkpoint);
* ``on_step_end(trainer, logs)`` - after every optimizer step: ``logs`` has ``iteration``
  (1-based), ``lr``, ``loss`` and ``accuracy`` of that step's batch;
* ``on_validation_end(trainer, logs)`` - after each validation: ``iteration``, ``val_loss``,
  ``val_accuracy``; a callback may set ``trainer.stop_training`` (early stopping does);
* ``on_metrics(trainer, record)`` - a metrics record was made (every ``log_every`` steps,
  each validation, the last step): the record written to ``metrics.jsonl``: ``iteration``,
  ``loss`` and ``train_accuracy`` (means over the steps since the previous log line, this
  one included: the logging window), ``lr`` (this step's),
  ``val_loss`` and ``val_accuracy`` (None unless validated then), ``elapsed`` (seconds);
* ``on_run_end(trainer, result)`` - ``fit()`` returns (``result`` is its ``TrainResult``);
* ``on_test_end(trainer, evaluation)`` - ``run_training`` evaluated the test set.

In a data-parallel run the hooks run on the primary rank only. A callback with state that must
survive ``--resume`` names itself with ``state_key`` and implements ``state()`` / ``restore()``:
JSON values, plus NumPy arrays at the top level, stored in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..evaluation import Evaluation
    from ..run_directory import MetricsLog
    from .trainer import Trainer, TrainResult


class Callback:
    """Base class: every hook does nothing."""

    state_key: str | None = None  # set to keep state in checkpoints

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, logs: Mapping[str, Any]) -> None: ...

    def on_validation_end(self, trainer: Trainer, logs: Mapping[str, Any]) -> None: ...

    def on_metrics(self, trainer: Trainer, record: Mapping[str, Any]) -> None: ...

    def on_run_end(self, trainer: Trainer, result: TrainResult) -> None: ...

    def on_test_end(self, trainer: Trainer, evaluation: Evaluation) -> None: ...

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Mapping[str, Any]) -> None: ...


class CallbackList:
    """Calls each callback's hook in order; collects and restores their checkpoint state."""

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks = list(callbacks)
        keys = [c.state_key for c in self.callbacks if c.state_key]
        if len(keys) != len(set(keys)):
            raise ValueError(f"two callbacks share a state_key: {sorted(keys)}")

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def call(self, hook: str, trainer: Trainer, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(trainer, *args)

    def states(self) -> dict[str, dict[str, Any]]:
        return {c.state_key: c.state() for c in self.callbacks if c.state_key}

    def restore(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        for callback in self.callbacks:
            if callback.state_key and callback.state_key in states:
                callback.restore(states[callback.state_key])


class MetricsFiles(Callback):
    """Appends each metrics record to the run directory's ``metrics.jsonl`` and
    ``metrics.csv`` (``RunDirectory.metrics_log``); when resuming, records after the
    checkpoint are dropped first, so the files read as if the run had never stopped."""

    def __init__(self) -> None:
        self.log: MetricsLog | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        if self.log is None and trainer.run is not None:
            self.log = trainer.run.metrics_log(keep_until=trainer.resumed_from)

    def on_metrics(self, trainer: Trainer, record: Mapping[str, Any]) -> None:
        if self.log is not None:
            self.log.append(dict(record))
