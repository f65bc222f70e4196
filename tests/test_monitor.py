"""convspec.train.monitor: early stopping and the best checkpoint, by Keras's rules (checked
against Keras's own EarlyStopping), inside the Trainer, and across an interrupted run."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LINEAR, SMALL, tiny_dataset
from test_train import CtrlCAt, NumpyLinear

from convspec.backends import get_backend
from convspec.errors import ConvspecError
from convspec.run_directory import BEST_FILE, RunDirectory
from convspec.specification import loads_spec
from convspec.train import EarlyStopping, Interrupted, Monitor, Trainer
from convspec.weights import read_weights


def test_monitor_direction_and_min_delta():
    assert Monitor("val_loss").direction == "min"
    assert Monitor("val_accuracy").direction == "max"
    assert Monitor("val_accuracy", "min").direction == "min"
    loss = Monitor("val_loss", min_delta=0.1)
    assert loss.improved(5.0, None)
    assert loss.improved(0.89, 1.0) and not loss.improved(0.9, 1.0)
    accuracy = Monitor("val_accuracy", min_delta=0.1)
    assert accuracy.improved(0.71, 0.6) and not accuracy.improved(0.7, 0.6)


class _Stub:
    """What a callback sees of the trainer."""

    def __init__(self) -> None:
        self.stop_training = False
        self.messages: list[str] = []

    def log(self, message: str) -> None:
        self.messages.append(message)


@pytest.mark.parametrize(("metric", "mode", "patience", "min_delta", "values"), [
    ("val_loss", "min", 2, 0.0, [1.0, 0.9, 0.95, 0.92, 0.91, 0.5]),
    ("val_loss", "min", 0, 0.0, [1.0, 0.9, 0.9, 0.8]),
    ("val_loss", "min", 1, 0.05, [1.0, 0.97, 0.9, 0.88, 0.87]),
    ("val_accuracy", "max", 3, 0.01, [0.5, 0.6, 0.605, 0.61, 0.6, 0.7, 0.69, 0.68, 0.7]),
    ("val_accuracy", "max", 2, 0.0, [0.5, 0.5, 0.5, 0.5]),
])
def test_early_stopping_stops_where_keras_does(metric, mode, patience, min_delta, values):
    keras = pytest.importorskip("keras")

    class Model:
        stop_training = False

    model = Model()
    theirs = keras.callbacks.EarlyStopping(monitor=metric, mode=mode, patience=patience,
                                           min_delta=min_delta)
    theirs.set_model(model)
    theirs.on_train_begin()
    ours, trainer = EarlyStopping(Monitor(metric, mode, min_delta), patience), _Stub()
    for epoch, value in enumerate(values):
        theirs.on_epoch_end(epoch, {metric: value})
        ours.on_validation_end(trainer, {"iteration": 10 * (epoch + 1), metric: value})
        assert trainer.stop_training == bool(model.stop_training), epoch
        if model.stop_training:
            break
    assert ours.best == pytest.approx(float(theirs.best))
    if model.stop_training:
        assert ours.stopped_at == 10 * (theirs.stopped_epoch + 1)
        assert trainer.messages[-1].startswith(f"Early stopping at iteration {ours.stopped_at}:")


EARLY = LINEAR.replace("train: {batch_size: 8, iterations: 12, log_every: 3, validate_every: 6}",
                       "train: {batch_size: 8, iterations: 60, log_every: 3, validate_every: 5,\n"
                       "        early_stopping: {monitor: val_accuracy, patience: 2, "
                       "min_delta: 0.9}}")


def test_trainer_stops_early_and_keeps_the_best(tmp_path):
    spec = loads_spec(EARLY)
    lines: list[str] = []
    result = Trainer(spec, NumpyLinear(spec), tiny_dataset(), run_dir=tmp_path,
                     log=lines.append).fit()
    # validations at 5 (the first: an improvement), 10 and 15 (no gain of 0.9): stop at 15
    assert result.iterations == 15 and result.stopped_early == 15
    assert any(line.startswith("Early stopping at iteration 15: val_accuracy has not improved "
                               "by more than 0.9 for 2 validation(s)") for line in lines)
    run = RunDirectory(tmp_path)
    records = run.read_metrics()
    assert [r["iteration"] for r in records if r["val_loss"] is not None] == [5, 10, 15]
    assert run.load_checkpoint(spec).iteration == 15
    # best.safetensors: the lowest validation loss (train.best's default monitor)
    best = min((r for r in records if r["val_loss"] is not None), key=lambda r: r["val_loss"])
    assert result.best == {"iteration": best["iteration"], "monitor": "val_loss",
                           "value": best["val_loss"]}
    weights, meta = read_weights(tmp_path / BEST_FILE)
    assert meta["iteration"] == str(best["iteration"]) and meta["monitor"] == "val_loss"
    assert float(meta["value"]) == best["val_loss"]


def test_an_early_stopped_run_resumed_trains_no_further(tmp_path):
    spec = loads_spec(EARLY)
    Trainer(spec, NumpyLinear(spec), tiny_dataset(), run_dir=tmp_path, log=lambda m: None).fit()
    lines: list[str] = []
    trainer = Trainer(spec, NumpyLinear(spec), tiny_dataset(), run_dir=tmp_path,
                      log=lines.append)
    trainer.resume()
    result = trainer.fit()
    assert result.iterations == 15 and result.stopped_early == 15
    assert "(the run stopped early at iteration 15; nothing to train)" in lines


def test_early_stopping_needs_a_validation_set():
    spec = loads_spec(EARLY)
    data = tiny_dataset(n_val=0)
    with pytest.raises(ConvspecError, match="early_stopping watches the validation set"):
        Trainer(spec, NumpyLinear(spec), data)


STOPPING = SMALL.replace("  iterations: 40\n", "  iterations: 60\n").replace(
    "  validate_every: 20\n",
    "  validate_every: 5\n"
    "  early_stopping: {monitor: val_accuracy, patience: 2, min_delta: 0.01}\n")


def _train(backend: str, data, run_dir, *, stop_at: int | None = None,
           crash_at: int | None = None):
    """(result, best weights, metrics, checkpoint state) of a run of STOPPING; interrupted by
    Ctrl-C at ``stop_at`` or a crash (no checkpoint) at ``crash_at``, then resumed in a new
    model, as a new process would."""
    spec = loads_spec(STOPPING)
    model = get_backend(backend).compile(spec)
    if stop_at is not None or crash_at is not None:
        wrapped = CtrlCAt(model, stop_at) if stop_at else _CrashAt(model, crash_at)
        with pytest.raises((Interrupted, RuntimeError)):
            Trainer(spec, wrapped, data, run_dir=run_dir, checkpoint_every=10,
                    log=lambda m: None).fit()
        model = get_backend(backend).compile(spec)
        trainer = Trainer(spec, model, data, run_dir=run_dir, checkpoint_every=10,
                          log=lambda m: None)
        trainer.resume()
    else:
        trainer = Trainer(spec, model, data, run_dir=run_dir, checkpoint_every=10,
                          log=lambda m: None)
    result = trainer.fit()
    run = RunDirectory(run_dir)
    return result, read_weights(run.path / BEST_FILE), run.read_metrics(), \
        run.load_checkpoint(spec).state


class _CrashAt(CtrlCAt):
    """Dies during the given step without a checkpoint, as a killed process would."""

    def train_step(self, images, labels, fetch=False, learning_rate=None):
        self.calls += 1
        if self.calls == self.step:
            raise RuntimeError("killed")
        return self.model.train_step(images, labels, fetch=fetch, learning_rate=learning_rate)


def _untimed(records):
    return [{k: v for k, v in r.items() if k != "elapsed"} for r in records]


@pytest.mark.parametrize("interruption", ["ctrl-c", "crash"])
def test_best_and_stopping_survive_resume_exactly(backend_name, tmp_path, interruption):
    data = tiny_dataset()
    full, (w_full, m_full), rec_full, state_full = _train(backend_name, data, tmp_path / "full")
    assert full.stopped_early is not None and 17 < full.stopped_early < 60  # after the crash
    assert full.iterations == full.stopped_early
    # stop after a validation that improved the best; a crash leaves the newer best.safetensors
    # beside an older checkpoint (iteration 10), which the resume must not keep
    kwargs = {"stop_at": 12} if interruption == "ctrl-c" else {"crash_at": 17}
    resumed, (w_res, m_res), rec_res, state_res = _train(backend_name, data,
                                                         tmp_path / "resumed", **kwargs)
    assert resumed.stopped_early == full.stopped_early
    assert resumed.best == full.best and m_res == m_full
    for name in w_full:
        np.testing.assert_array_equal(w_full[name], w_res[name], err_msg=name)
    assert _untimed(rec_res) == _untimed(rec_full)
    assert state_res["early_stopping"] == state_full["early_stopping"]


def test_a_resumed_run_rewrites_best_from_its_checkpoint(tmp_path):
    """A crash after a new best but before the next checkpoint leaves best.safetensors ahead
    of the checkpoint; resuming puts back the checkpoint's best before anything else."""
    spec = loads_spec(LINEAR.replace("validate_every: 6", "validate_every: 2"))
    data = tiny_dataset()
    with pytest.raises(RuntimeError):
        Trainer(spec, _CrashAt(NumpyLinear(spec), 7), data, run_dir=tmp_path,
                checkpoint_every=4, log=lambda m: None).fit()
    _, meta = read_weights(tmp_path / BEST_FILE)
    assert meta["iteration"] == "6"  # newer than the checkpoint (iteration 4)
    trainer = Trainer(spec, NumpyLinear(spec), data, run_dir=tmp_path, checkpoint_every=4,
                      log=lambda m: None)
    trainer.resume()
    trainer.fit(until=4)  # begins (rewriting best.safetensors) and has nothing to train
    weights, meta = read_weights(tmp_path / BEST_FILE)
    assert meta["iteration"] == "4" and trainer.best.iteration == 4
    for name, array in trainer.best.weights.items():
        np.testing.assert_array_equal(weights[name], array)
