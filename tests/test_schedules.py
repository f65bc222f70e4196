"""convspec.train.schedules: each schedule's rates, checked against Keras's and PyTorch's own
schedules where they exist; the trainer giving each step its rate; 50 scheduled steps the same
in both backends; the state for an exact resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import LINEAR, SPECS, tiny_dataset
from test_train import CtrlCAt, NumpyLinear

from convspec.backends import get_backend
from convspec.run_directory import RunDirectory
from convspec.specification import load_spec, loads_spec
from convspec.train import Interrupted, Trainer
from convspec.train.monitor import Monitor
from convspec.train.schedules import (
    CosineDecay,
    ExponentialDecay,
    LearningRateSchedule,
    ReduceOnPlateau,
    StepDecay,
    make_schedule,
)

STEPS = 50
LR = 0.01


def _train(schedule: dict):
    return load_spec(SPECS / "mnist.yaml").override({"train.schedule": schedule,
                                                      "train.optimizer.learning_rate": LR}).train


def _rates(schedule: LearningRateSchedule, steps: int = STEPS) -> list[float]:
    return [schedule.learning_rate(t) for t in range(steps)]


def test_constant_step_and_exponential_follow_their_formulas():
    assert _rates(LearningRateSchedule(LR)) == [LR] * STEPS
    assert _rates(StepDecay(LR, 10, 0.5))[9:12] == [LR, LR * 0.5, LR * 0.5]
    assert _rates(StepDecay(LR, 10, 0.5))[-1] == LR * 0.5 ** 4
    exponential = _rates(ExponentialDecay(LR, 10, 0.5))
    assert exponential[0] == LR and exponential[10] == pytest.approx(LR * 0.5)
    assert exponential[5] == pytest.approx(LR * 0.5 ** 0.5)


def test_cosine_warms_up_linearly_then_decays_to_alpha():
    rates = _rates(CosineDecay(LR, 40, warmup_steps=10, warmup_start=0.1, alpha=0.05))
    assert rates[0] == pytest.approx(0.1 * LR)  # the first step runs at the warmup start
    assert rates[5] == pytest.approx(LR * (0.1 + 0.9 * 5 / 10))
    assert rates[10] == pytest.approx(LR)  # the peak, then the cosine
    assert rates[30] == pytest.approx(LR * (0.95 * 0.5 * (1 + math.cos(math.pi / 2)) + 0.05))
    assert CosineDecay(LR, 40, warmup_steps=10, alpha=0.05).learning_rate(500) == \
        pytest.approx(0.05 * LR)  # past the decay: alpha * lr


@pytest.fixture(scope="module")
def keras_schedules():
    return pytest.importorskip("keras").optimizers.schedules


@pytest.mark.parametrize(("ours", "theirs"), [
    (lambda: StepDecay(LR, 7, 0.5),
     lambda k: k.ExponentialDecay(LR, 7, 0.5, staircase=True)),
    (lambda: ExponentialDecay(LR, 7, 0.8), lambda k: k.ExponentialDecay(LR, 7, 0.8)),
    (lambda: CosineDecay(LR, 30, warmup_steps=8, warmup_start=0.2, alpha=0.1),
     lambda k: k.CosineDecay(0.2 * LR, 30, alpha=0.1, warmup_target=LR, warmup_steps=8)),
    (lambda: CosineDecay(LR, 35), lambda k: k.CosineDecay(LR, 35)),
], ids=["step", "exponential", "cosine-warmup", "cosine"])
def test_rates_match_keras_for_50_steps(keras_schedules, ours, theirs):
    keras_rates = [float(theirs(keras_schedules)(t)) for t in range(STEPS)]
    # Keras computes in float32: 1e-6 relative, and near zero float32's epsilon times lr
    assert _rates(ours()) == pytest.approx(keras_rates, rel=1e-6, abs=2e-9)


@pytest.mark.parametrize(("ours", "theirs"), [
    (lambda: StepDecay(LR, 7, 0.5), lambda s, opt: s.StepLR(opt, 7, 0.5)),
    (lambda: ExponentialDecay(LR, 1, 0.9), lambda s, opt: s.ExponentialLR(opt, 0.9)),
], ids=["step", "exponential"])
def test_rates_match_pytorch_stepped_per_iteration(ours, theirs):
    torch = pytest.importorskip("torch")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    scheduler = theirs(torch.optim.lr_scheduler, optimizer)
    torch_rates = []
    for _ in range(STEPS):
        torch_rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert _rates(ours()) == pytest.approx(torch_rates, rel=1e-12)


def _plateau(**kwargs) -> ReduceOnPlateau:
    options = {"factor": 0.5, "patience": 2, "cooldown": 1, "min_lr": 0.002} | kwargs
    return ReduceOnPlateau(LR, Monitor("val_loss", "min", 0.01), **options)


LOSSES = [1.0, 0.9, 0.895, 0.9, 0.8, 0.85, 0.86, 0.87, 0.79, 0.8, 0.81, 0.82, 0.83, 0.84,
          0.85, 0.86, 0.87, 0.88]


def test_reduce_on_plateau_matches_keras_callback():
    callbacks = pytest.importorskip("keras").callbacks

    class Optimizer:
        learning_rate = LR

    class Model:
        optimizer = Optimizer()
        stop_training = False

    keras_cb = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2,
                                           mode="min", min_delta=0.01, cooldown=1,
                                           min_lr=0.002)
    model = Model()
    keras_cb.set_model(model)
    keras_cb.on_train_begin()
    ours = _plateau()
    for epoch, loss in enumerate(LOSSES):
        ours.observe({"val_loss": loss, "val_accuracy": 0.5})
        keras_cb.on_epoch_end(epoch, {"val_loss": loss})
        assert ours.learning_rate(epoch) == pytest.approx(float(model.optimizer.learning_rate))
    assert ours.learning_rate(0) == 0.002  # reduced down to min_lr, and not below


def test_reduce_on_plateau_state_round_trips_through_json():
    a, b = _plateau(), _plateau()
    for loss in LOSSES[:7]:
        a.observe({"val_loss": loss})
    b.restore(json.loads(json.dumps(a.state())))
    for loss in LOSSES[7:]:
        a.observe({"val_loss": loss})
        b.observe({"val_loss": loss})
        assert a.learning_rate(0) == b.learning_rate(0)
    assert b.state() == a.state()


def test_make_schedule_reads_the_spec():
    assert make_schedule(_train({"kind": "constant"}), 100).constant
    step = make_schedule(_train({"kind": "step", "step_size": 10, "gamma": 0.5}), 100)
    assert isinstance(step, StepDecay) and step.learning_rate(10) == LR * 0.5
    cosine = make_schedule(_train({"kind": "cosine", "warmup_steps": 20}), 100)
    assert isinstance(cosine, CosineDecay) and cosine.decay_steps == 80  # the rest of the run
    assert cosine.learning_rate(99) > 0 and cosine.learning_rate(100) == 0.0
    plateau = make_schedule(_train({"kind": "reduce_on_plateau", "monitor": "val_accuracy"}),
                            100)
    assert isinstance(plateau, ReduceOnPlateau) and plateau.monitor.direction == "max"


class _Recording(NumpyLinear):
    """Records the learning rate the trainer gives each step."""

    def __init__(self, spec):
        super().__init__(spec)
        self.rates: list[float | None] = []

    def train_step(self, images, labels, fetch=False, learning_rate=None):
        self.rates.append(learning_rate)
        return super().train_step(images, labels, fetch, learning_rate)


@pytest.mark.parametrize("schedule", [
    {"kind": "constant"}, {"kind": "step", "step_size": 4, "gamma": 0.5},
    {"kind": "exponential", "decay_steps": 5, "decay_rate": 0.5},
    {"kind": "cosine", "warmup_steps": 3, "warmup_start": 0.2}])
def test_the_trainer_gives_every_step_its_scheduled_rate(schedule):
    spec = loads_spec(LINEAR).override({"train.schedule": schedule,
                                        "train.optimizer.learning_rate": LR})
    model = _Recording(spec)
    trainer = Trainer(spec, model, tiny_dataset(), log=lambda m: None)
    result = trainer.fit()
    base, t = LR, np.arange(12)  # the README's formulas, written out
    want = {"constant": base + 0 * t, "step": base * 0.5 ** (t // 4),
            "exponential": base * 0.5 ** (t / 5),
            "cosine": np.where(t < 3, base * (0.2 + 0.8 * t / 3),
                               base * 0.5 * (1 + np.cos(np.pi * np.minimum(t - 3, 9) / 9)))}
    np.testing.assert_allclose(model.rates, want[schedule["kind"]], rtol=1e-12)
    logged = {r["iteration"]: r["lr"] for r in result.history}
    assert all(logged[it] == model.rates[it - 1] for it in logged)  # the rate of that step


def test_reduce_on_plateau_changes_the_rate_after_the_validation_that_decides():
    spec = loads_spec(LINEAR.replace("validate_every: 6", "validate_every: 2")).override({
        "train.schedule": {"kind": "reduce_on_plateau", "patience": 0, "factor": 0.5,
                           "min_delta": 10.0}, "train.optimizer.learning_rate": LR})
    model = _Recording(spec)
    Trainer(spec, model, tiny_dataset(), log=lambda m: None).fit()
    # the first validation sets the best; no later one improves by 10, so each halves the
    # rate, from the next step on (validations after steps 2, 4, ...)
    assert model.rates == [LR * 0.5 ** max(t // 2 - 1, 0) for t in range(12)]


SCHEDULED = """
name: scheduled
input: {height: 8, width: 8, channels: 1}
classes: 4
layers:
  - {kind: conv2d, filters: 4, kernel: 3, padding: same, activation: tanh}
  - {kind: maxpool, size: 2}
  - {kind: flatten}
  - {kind: dense, units: 4}
train:
  optimizer: {kind: adam, learning_rate: 0.02}
  batch_size: 8
  iterations: 50
  log_every: 10
  validate_every: 5
  eval_batch_size: 16
"""
SCHEDULES = {
    "step": {"kind": "step", "step_size": 10, "gamma": 0.5},
    "exponential": {"kind": "exponential", "decay_steps": 10, "decay_rate": 0.6},
    "cosine": {"kind": "cosine", "warmup_steps": 10, "warmup_start": 0.1, "alpha": 0.05},
    "reduce_on_plateau": {"kind": "reduce_on_plateau", "patience": 1, "factor": 0.5,
                          "min_delta": 0.02},
}


def _scheduled(kind: str):
    return loads_spec(SCHEDULED).override({"train.schedule": SCHEDULES[kind]})


def _data():
    return tiny_dataset(n_train=64, n_val=16, n_test=8, size=8, classes=4)


@pytest.mark.parametrize("kind", list(SCHEDULES))
def test_fifty_scheduled_steps_agree_across_backends(kind):
    """As tests/test_cross_backend.py's optimizer runs, with the trainer giving each step its
    rate (a plateau's from the validations each backend measured)."""
    from test_cross_backend import assert_close

    spec, runs = _scheduled(kind), {}
    for name in ("torch", "tensorflow"):
        pytest.importorskip(name)
        model = get_backend(name).compile(spec)
        result = Trainer(spec, model, _data(), log=lambda m: None).fit()
        runs[name] = (model, [r["lr"] for r in result.history])
    (torch_model, torch_rates), (tf_model, tf_rates) = runs["torch"], runs["tensorflow"]
    assert torch_rates == tf_rates and len(set(torch_rates)) > 2  # the rate did change
    assert_close(torch_model.get_weights(), tf_model.get_weights(), 1e-4,
                 f"weights after 50 steps with the {kind} schedule")


@pytest.mark.parametrize("kind", ["cosine", "reduce_on_plateau"])
def test_a_scheduled_run_resumes_exactly(backend_name, kind, tmp_path):
    spec, data = _scheduled(kind), _data()

    def trainer(model, run_dir):
        return Trainer(spec, model, data, run_dir=run_dir, checkpoint_every=10,
                       log=lambda m: None)

    full = trainer(get_backend(backend_name).compile(spec), tmp_path / "full").fit()
    with pytest.raises(Interrupted):
        trainer(CtrlCAt(get_backend(backend_name).compile(spec), 27), tmp_path / "cut").fit()
    state = RunDirectory(tmp_path / "cut").load_checkpoint(spec).state
    if kind == "reduce_on_plateau":  # the plateau's counters and rate are in the checkpoint
        assert set(state["schedule"]) == {"lr", "best", "wait", "cooldown_counter"}
    resumed = trainer(get_backend(backend_name).compile(spec), tmp_path / "cut")
    resumed.resume()
    again = resumed.fit()
    assert [_untimed(r) for r in again.history] == [_untimed(r) for r in full.history]
    a, b = (RunDirectory(tmp_path / name).load_checkpoint(spec) for name in ("full", "cut"))
    for name, value in a.weights.items():
        np.testing.assert_array_equal(value, b.weights[name], err_msg=name)
    assert all(np.array_equal(v, b.optimizer[k]) for k, v in a.optimizer.items())


def _untimed(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "elapsed"}
