"""The shared trainer: data order, logging, checkpoints, exact resume, NaN and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from conftest import LINEAR, SMALL, tiny_dataset

from convspec.backends import StepResult, get_backend
from convspec.backends.reference import ReferenceModel, softmax_cross_entropy
from convspec.run_directory import CHECKPOINT_FILE, RunDirectory
from convspec.specification import loads_spec
from convspec.train import (
    BatchSampler,
    Interrupted,
    Trainer,
    TrainingDiverged,
    apply_overrides,
    total_iterations,
)


class NumpyLinear(ReferenceModel):
    """A plain-SGD softmax regression: enough of the protocol to test the trainer alone."""

    def __init__(self, spec, nan_at: int | None = None, interrupt_at: int | None = None):
        super().__init__(spec)
        self.step, self.nan_at, self.interrupt_at = 0, nan_at, interrupt_at

    def set_weights(self, weights):
        self.weights = {k: np.array(v) for k, v in weights.items()}

    def optimizer_state(self):
        return {"step": np.array(self.step, dtype=np.int64)}

    def set_optimizer_state(self, state):
        self.step = int(state["step"])

    def train_step(self, images, labels, fetch=False, learning_rate=None):
        if self.interrupt_at is not None and self.step + 1 == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in the middle of a step
        x = images.reshape(len(images), -1).astype(np.float64)
        logits = x @ self.weights["fc1/kernel"] + self.weights["fc1/bias"]
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        loss = softmax_cross_entropy(logits, labels)
        acc = float((logits.argmax(1) == labels).mean())
        p[np.arange(len(labels)), labels] -= 1
        self.weights["fc1/kernel"] -= (0.1 * x.T @ p / len(labels)).astype(np.float32)
        self.weights["fc1/bias"] -= (0.1 * p.mean(0)).astype(np.float32)
        self.step += 1
        if self.nan_at is not None and self.step >= self.nan_at:
            loss = float("nan")
        return StepResult(loss, acc) if fetch else None


def _untimed(records):
    """Metrics records without their wall-clock field, for exact comparison."""
    return [{k: v for k, v in r.items() if k != "elapsed"} for r in records]


def test_sampler_visits_every_index_once_per_epoch():
    s = BatchSampler(10, 4, seed=1)
    seen = np.concatenate([s.next() for _ in range(5)])  # 20 = two full epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert s.epoch == 2


def test_sampler_state_restores_the_same_future_batches():
    a = BatchSampler(50, 7, seed=3)
    for _ in range(9):
        a.next()
    b = BatchSampler(50, 7, seed=99)
    b.restore(json.loads(json.dumps({**a.state(), "order": a.state()["order"].tolist()})))
    for _ in range(20):
        np.testing.assert_array_equal(a.next(), b.next())


def test_sampler_depends_on_seed():
    assert not np.array_equal(BatchSampler(100, 10, 1).next(), BatchSampler(100, 10, 2).next())


def test_epochs_become_iterations():
    spec = apply_overrides(loads_spec(LINEAR), {"epochs": 3})
    assert total_iterations(spec, 100) == 3 * 13


def test_trainer_logs_tutorial_lines_and_metrics(tmp_path):
    spec = loads_spec(LINEAR)
    lines: list[str] = []
    result = Trainer(spec, NumpyLinear(spec), tiny_dataset(), run_dir=tmp_path,
                     log=lines.append).fit()
    assert result.iterations == 12
    assert "Optimization Iteration:      1, Training Accuracy:" in lines[0]
    assert any(line.startswith("Optimization Iteration:      4,") for line in lines)
    assert any(line.startswith("Validation Accuracy after iteration 6:") for line in lines)
    assert lines[-1].startswith("Time usage: 0:00:0")
    records = RunDirectory(tmp_path).read_metrics()
    assert [r["iteration"] for r in records] == [1, 4, 6, 7, 10, 12]
    assert records[-1]["val_accuracy"] is not None and records[0]["val_accuracy"] is None
    csv_lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("iteration,loss") and len(csv_lines) == 7
    assert RunDirectory(tmp_path).load_checkpoint(spec).iteration == 12


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    spec = loads_spec(LINEAR)
    trainer = Trainer(spec, NumpyLinear(spec, nan_at=8), tiny_dataset(), run_dir=tmp_path,
                      checkpoint_every=3, log=lambda m: None)
    # every step's loss is read (the records are window means), so the first NaN stops the run
    with pytest.raises(TrainingDiverged, match="iteration 8;.*last good checkpoint "
                                               r"\(iteration 6\)"):
        trainer.fit()
    assert RunDirectory(tmp_path).load_checkpoint(spec).iteration == 6


def test_ctrl_c_checkpoints_at_step_boundary(tmp_path):
    spec = loads_spec(LINEAR)
    trainer = Trainer(spec, NumpyLinear(spec, interrupt_at=5), tiny_dataset(), run_dir=tmp_path,
                      log=lambda m: None)
    with pytest.raises(Interrupted, match="--resume"):
        trainer.fit()
    assert RunDirectory(tmp_path).load_checkpoint(spec).iteration == 5


def test_second_ctrl_c_stops_at_once_and_keeps_previous_checkpoint(tmp_path):
    spec = loads_spec(LINEAR)

    class Impatient(NumpyLinear):
        def train_step(self, images, labels, fetch=False, learning_rate=None):
            if self.step == 6:
                raise KeyboardInterrupt  # as the handler raises on a second Ctrl-C
            return super().train_step(images, labels, fetch, learning_rate)

    trainer = Trainer(spec, Impatient(spec), tiny_dataset(), run_dir=tmp_path,
                      checkpoint_every=4, log=lambda m: None)
    with pytest.raises(Interrupted, match="iteration 7; the checkpoint of iteration 4 is kept"):
        trainer.fit()
    assert RunDirectory(tmp_path).load_checkpoint(spec).iteration == 4


def test_numpy_model_resume_is_exact(tmp_path):
    spec = loads_spec(LINEAR)
    data = tiny_dataset()
    full = NumpyLinear(spec)
    Trainer(spec, full, data, run_dir=tmp_path / "a", log=lambda m: None).fit()
    half = NumpyLinear(spec, interrupt_at=7)
    with pytest.raises(Interrupted):
        Trainer(spec, half, data, run_dir=tmp_path / "b", log=lambda m: None).fit()
    resumed = NumpyLinear(spec)
    trainer = Trainer(spec, resumed, data, run_dir=tmp_path / "b", log=lambda m: None)
    trainer.resume()
    trainer.fit()
    for k, v in full.weights.items():
        np.testing.assert_array_equal(v, resumed.weights[k])
    a, b = (RunDirectory(tmp_path / name).read_metrics() for name in "ab")
    assert _untimed(a) == _untimed(b)


class CtrlCAt:
    """Wraps a compiled model and presses Ctrl-C during the given step."""

    def __init__(self, model, step: int):
        self.model, self.step, self.calls = model, step, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def train_step(self, images, labels, fetch=False, learning_rate=None):
        self.calls += 1
        if self.calls == self.step:
            os.kill(os.getpid(), signal.SIGINT)
        return self.model.train_step(images, labels, fetch=fetch, learning_rate=learning_rate)


def _weights_after(backend: str, spec, data, run_dir, *, stop_at: int | None = None):
    model = get_backend(backend).compile(spec)
    if stop_at is not None:
        with pytest.raises(Interrupted):
            Trainer(spec, CtrlCAt(model, stop_at), data, run_dir=run_dir,
                    log=lambda m: None).fit()
        model = get_backend(backend).compile(spec)  # a fresh process, in effect
        trainer = Trainer(spec, model, data, run_dir=run_dir, log=lambda m: None)
        trainer.resume()
        assert trainer.iteration == stop_at
    else:
        trainer = Trainer(spec, model, data, run_dir=run_dir, log=lambda m: None)
    trainer.fit()
    return model.get_weights(), RunDirectory(run_dir).read_metrics()


def test_resume_matches_uninterrupted_run(backend_name, tmp_path):
    spec = loads_spec(SMALL)
    data = tiny_dataset()
    w_full, m_full = _weights_after(backend_name, spec, data, tmp_path / "full")
    w_res, m_res = _weights_after(backend_name, spec, data, tmp_path / "resumed", stop_at=17)
    for name in w_full:
        np.testing.assert_array_equal(w_full[name], w_res[name], err_msg=name)
    assert _untimed(m_full) == _untimed(m_res)


def test_same_seed_same_metrics(backend_name, tmp_path):
    spec = loads_spec(SMALL)
    data = tiny_dataset()
    _, a = _weights_after(backend_name, spec, data, tmp_path / "a")
    _, b = _weights_after(backend_name, spec, data, tmp_path / "b")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]


def test_checkpoint_file_is_replaced_atomically(tmp_path):
    spec = loads_spec(LINEAR)
    Trainer(spec, NumpyLinear(spec), tiny_dataset(), run_dir=tmp_path, checkpoint_every=2,
            log=lambda m: None).fit()
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
