"""convspec.train.callbacks: the hooks a Callback gets, in order, with the window means, the
validation loss and the learning rate; state kept across resume; the metrics files."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LINEAR, tiny_dataset
from test_train import NumpyLinear

from convspec.metrics import cross_entropy
from convspec.run_directory import RunDirectory
from convspec.specification import loads_spec
from convspec.train import Callback, Trainer
from convspec.train.callbacks import CallbackList


class Recorder(Callback):
    """Every hook call, and each step's loss and accuracy."""

    state_key = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.steps: list[dict] = []
        self.records: list[dict] = []
        self.validations: list[dict] = []
        self.restored: dict | None = None

    def on_train_begin(self, trainer):
        self.calls.append(("train_begin", trainer.iteration))

    def on_step_end(self, trainer, logs):
        self.calls.append(("step", logs["iteration"]))
        self.steps.append(dict(logs))

    def on_validation_end(self, trainer, logs):
        self.calls.append(("validation", logs["iteration"]))
        self.validations.append(dict(logs))

    def on_metrics(self, trainer, record):
        self.calls.append(("metrics", record["iteration"]))
        self.records.append(dict(record))

    def on_run_end(self, trainer, result):
        self.calls.append(("run_end", result.iterations))

    def state(self):
        return {"seen": len(self.steps), "last": np.arange(3)}

    def restore(self, state):
        self.restored = dict(state)


def test_hooks_come_in_order_with_window_means_and_validation_loss(tmp_path):
    spec = loads_spec(LINEAR)  # 12 steps, log every 3, validate every 6
    model, data, recorder = NumpyLinear(spec), tiny_dataset(), Recorder()
    Trainer(spec, model, data, run_dir=tmp_path, callbacks=[recorder], log=lambda m: None).fit()
    assert recorder.calls[:5] == [("train_begin", 0), ("step", 1), ("metrics", 1), ("step", 2),
                                  ("step", 3)]
    assert recorder.calls[-4:] == [("step", 12), ("validation", 12), ("metrics", 12),
                                   ("run_end", 12)]
    assert [r["iteration"] for r in recorder.records] == [1, 4, 6, 7, 10, 12]
    # each record's training figures are the means of the steps since the previous log line
    # (1, 4, 7, 10): the validation at 6 does not cut the window of the line at 7 short
    logged = 0
    for record in recorder.records:
        window = recorder.steps[logged:record["iteration"]]
        assert record["loss"] == pytest.approx(np.mean([s["loss"] for s in window]))
        assert record["train_accuracy"] == pytest.approx(np.mean([s["accuracy"] for s in window]))
        assert record["lr"] == spec.train.optimizer.learning_rate == window[-1]["lr"]
        if (record["iteration"] - 1) % spec.train.log_every == 0:
            logged = record["iteration"]
    assert [r["iteration"] for r in recorder.records if r["val_loss"] is None] == [1, 4, 7, 10]
    assert recorder.records == RunDirectory(tmp_path).read_metrics()  # the metrics files


def test_validation_loss_is_the_cross_entropy_of_the_predicted_logits(tmp_path):
    spec = loads_spec(LINEAR)
    model, data, recorder = NumpyLinear(spec), tiny_dataset(), Recorder()
    Trainer(spec, model, data, callbacks=[recorder], log=lambda m: None).fit()
    last = recorder.validations[-1]
    logits = model.predict(data.validation.images)
    assert last["val_loss"] == cross_entropy(logits, data.validation.labels)
    assert last["val_accuracy"] == float((logits.argmax(1) == data.validation.labels).mean())


def test_the_log_lines_keep_the_tutorials_words(tmp_path):
    spec = loads_spec(LINEAR)
    lines: list[str] = []
    Trainer(spec, NumpyLinear(spec), tiny_dataset(), log=lines.append).fit()
    assert lines[0].startswith("Optimization Iteration:      1, Training Accuracy: ")
    validation = [line for line in lines if line.startswith("Validation")]
    assert len(validation) == 2
    assert validation[0].startswith("Validation Accuracy after iteration 6: ")
    assert ", Validation Loss: " in validation[0]


def test_callback_state_is_kept_in_the_checkpoint(tmp_path):
    spec = loads_spec(LINEAR)
    data = tiny_dataset()
    Trainer(spec, NumpyLinear(spec), data, run_dir=tmp_path, callbacks=[Recorder()],
            log=lambda m: None).fit(until=6)
    recorder = Recorder()
    trainer = Trainer(spec, NumpyLinear(spec), data, run_dir=tmp_path, callbacks=[recorder],
                      log=lambda m: None)
    trainer.resume()
    assert recorder.restored["seen"] == 6
    np.testing.assert_array_equal(recorder.restored["last"], np.arange(3))
    trainer.fit()
    assert recorder.calls[0] == ("train_begin", 6) and trainer.resumed_from == 6


def test_two_callbacks_cannot_share_a_state_key():
    with pytest.raises(ValueError, match="share a state_key"):
        CallbackList([Recorder(), Recorder()])
