"""convspec.train.schedules: each schedule's rates, checked against Keras's and PyTorch's own
schedules where they exist, its state for resume, and the refusal while the backends do not
apply a per-step rate yet."""

from __future__ import annotations

import json
import math

import pytest
from conftest import SPECS

from convspec.specification import load_spec
from convspec.train.monitor import Monitor
from convspec.train.schedules import (
    CosineDecay,
    ExponentialDecay,
    LearningRateSchedule,
    ReduceOnPlateau,
    ScheduleNotApplied,
    StepDecay,
    check_applicable,
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


@pytest.mark.parametrize("schedule", [
    {"kind": "step", "step_size": 10}, {"kind": "exponential", "decay_steps": 10,
                                        "decay_rate": 0.9},
    {"kind": "cosine", "warmup_steps": 5}, {"kind": "reduce_on_plateau"}])
def test_a_schedule_is_refused_until_the_backends_apply_it(schedule):
    """The rates are computed, but the backends' optimizer steps do not take a per-step
    learning rate yet: training with one would silently use the constant rate."""
    check_applicable(_train({"kind": "constant"}))
    with pytest.raises(ScheduleNotApplied, match="not yet applied by the backends"):
        check_applicable(_train(schedule))
