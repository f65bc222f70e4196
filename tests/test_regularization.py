"""convspec.regularization: L2, global-norm clipping and decoupled weight decay (AdamW), each
backend against the NumPy formula of the update for a few steps, and both backends together
for 50 steps, as the optimizer tests of test_parity.py and test_cross_backend.py."""

from __future__ import annotations

import numpy as np
import pytest

from convspec.backends import StepResult, check_support, get_backend
from convspec.errors import BackendError, SpecError
from convspec.regularization import Regularization, features_used, penalized_names
from convspec.specification import loads_spec
from convspec.train.schedules import CosineDecay
from convspec.weights import init_weights, trainable_names

NET = """
name: regularized
input: {height: 6, width: 6, channels: 2}
classes: 3
layers:
  - {kind: conv2d, filters: 4, kernel: 3, padding: same, bias: false}
  - {kind: batchnorm}
  - {kind: tanh}
  - {kind: flatten}
  - {kind: dense, units: 5, activation: sigmoid}
  - {kind: dense, units: 3}
train: {batch_size: 6}
"""
ADAM = {"kind": "adam", "learning_rate": 0.01, "beta1": 0.8, "beta2": 0.9, "epsilon": 1e-3}
CASES = {
    "adamw": ({**ADAM, "weight_decay": 2.0}, {}),
    "l2-momentum": ({"kind": "momentum", "learning_rate": 0.05, "momentum": 0.9},
                    {"train.l2": 0.05}),
    "clip-sgd": ({"kind": "sgd", "learning_rate": 0.1}, {"train.clip_norm": 0.05}),
    "all-nesterov": ({"kind": "momentum", "learning_rate": 0.05, "nesterov": True,
                      "weight_decay": 1.0}, {"train.l2": 0.02, "train.clip_norm": 0.2}),
    "all-adam": ({**ADAM, "weight_decay": 1.0}, {"train.l2": 0.02, "train.clip_norm": 0.1}),
}
RATES = [1.0, 0.8, 0.5]  # each step's rate, as a fraction of learning_rate (a schedule's)


def _spec(case: str, text: str = NET):
    optimizer, extra = CASES[case]
    return loads_spec(text).override({"train.optimizer": optimizer, **extra})


def _batch(spec, n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.random((n, spec.input.height, spec.input.width, spec.input.channels),
                   dtype=np.float32)
    return x, rng.integers(0, spec.classes, n)


def _weights(spec) -> dict[str, np.ndarray]:
    weights = init_weights(spec)
    rng = np.random.default_rng(3)  # batch-norm parameters away from 1 and 0
    for name in ("bn1/gamma", "bn1/beta"):
        weights[name] = rng.normal(1.0, 0.4, weights[name].shape).astype(np.float32)
    return weights


def _numpy_update(spec, t: int, lr: float, w: dict, g: dict, slots: dict) -> float:
    """The documented update in float64 (convspec.regularization, then the optimizer's rule,
    t counting from 1); returns the clipping factor."""
    train, opt = spec.train, spec.train.optimizer
    g = {k: v + 2 * train.l2 * w[k] if k.endswith("/kernel") else v for k, v in g.items()}
    norm = np.sqrt(sum(float(np.sum(v ** 2)) for v in g.values()))
    factor = 1.0 if train.clip_norm is None else train.clip_norm / max(norm, train.clip_norm)
    for name, grad in g.items():
        grad = grad * factor
        w[name] *= 1 - lr * opt.weight_decay
        if opt.kind == "sgd":
            w[name] -= lr * grad
        elif opt.kind == "momentum":
            a = slots["accum"][name] = opt.momentum * slots["accum"][name] + grad
            w[name] -= lr * (grad + opt.momentum * a if opt.nesterov else a)
        else:
            b1, b2 = opt.beta1, opt.beta2
            lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            m = slots["m"][name] = slots["m"][name] + (grad - slots["m"][name]) * (1 - b1)
            v = slots["v"][name] = slots["v"][name] + (grad ** 2 - slots["v"][name]) * (1 - b2)
            w[name] -= lr_t * m / (np.sqrt(v) + opt.epsilon)
    return factor


def _run_numpy(spec, model, batches) -> tuple[dict, list[float]]:
    """The weights after ``batches`` by the formula, fed the backend's loss gradients, while
    the backend takes the same steps; and each step's clipping factor."""
    start = model.get_weights()
    w = {k: start[k].astype(np.float64) for k in trainable_names(spec)}
    slot_names = {"adam": ("m", "v"), "momentum": ("accum",), "sgd": ()}[
        spec.train.optimizer.kind]
    slots = {s: {k: np.zeros_like(v) for k, v in w.items()} for s in slot_names}
    factors = []
    for t, ((x, y), fraction) in enumerate(zip(batches, RATES, strict=True), start=1):
        lr = spec.train.optimizer.learning_rate * fraction
        _, grads = model.gradients(x, y, training=True)  # what this step starts from
        factors.append(_numpy_update(spec, t, lr, w, {k: g.astype(np.float64)
                                                      for k, g in grads.items()}, slots))
        assert isinstance(model.train_step(x, y, fetch=True, learning_rate=lr), StepResult)
    return w, factors


@pytest.mark.parametrize("case", list(CASES))
def test_updates_match_the_documented_formulas(backend_name, case):
    spec = _spec(case)
    batches = [_batch(spec, 6, 10 + t) for t in range(len(RATES))]
    model = get_backend(backend_name).compile(spec, weights=_weights(spec))
    want, factors = _run_numpy(spec, model, batches)
    got = model.get_weights()
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5,
                                   atol=1e-5 * np.max(np.abs(value)), err_msg=name)
    if spec.train.clip_norm is not None:
        assert min(factors) < 0.9  # the clipping clipped
    # without the regularisation the same steps end elsewhere: the test sees it
    plain = loads_spec(NET).override({"train.optimizer": {
        k: v for k, v in CASES[case][0].items() if k != "weight_decay"}})
    bare, _ = _run_numpy(plain, get_backend(backend_name).compile(plain,
                                                                   weights=_weights(spec)),
                         batches)
    assert max(np.max(np.abs(bare[k] - want[k])) / np.max(np.abs(want[k])) for k in want) > 1e-3


def test_l2_covers_kernels_and_decay_every_trainable_weight():
    spec = _spec("all-adam")
    assert penalized_names(spec) == ["conv1/kernel", "fc1/kernel", "fc2/kernel"]
    trainable = trainable_names(spec)
    r = Regularization.from_spec(spec, trainable)
    assert [trainable[i] for i in r.penalized] == penalized_names(spec)
    assert (r.l2, r.clip_norm, r.weight_decay) == (0.02, 0.1, 1.0)
    assert r.decay_factor(0.01) == 1 - 0.01
    assert Regularization.from_spec(loads_spec(NET), trainable) == Regularization()


def test_fields_are_validated_with_their_place():
    with pytest.raises(SpecError, match="train.clip_norm"):
        loads_spec(NET).override({"train.clip_norm": 0})
    with pytest.raises(SpecError, match="train.l2"):
        loads_spec(NET).override({"train.l2": -1.0})
    with pytest.raises(SpecError, match="weight_decay"):
        loads_spec(NET).override({"train.optimizer": {"kind": "sgd", "weight_decay": -0.1}})


def test_a_backend_without_the_features_refuses_a_regularised_spec():
    class Plain:
        name = "plain"

    spec = _spec("all-adam")
    assert features_used(spec) == {"weight_decay": ["train.optimizer.weight_decay"],
                                   "l2": ["train.l2"], "clip_norm": ["train.clip_norm"]}
    with pytest.raises(BackendError, match="no decoupled weight decay, used by "
                                           "train.optimizer.weight_decay; no L2"):
        check_support(Plain(), spec)  # type: ignore[arg-type]
    check_support(Plain(), loads_spec(NET))  # type: ignore[arg-type]


CROSS = [("odd", "adamw"), ("odd", "l2-momentum"), ("valid", "clip-sgd"),
         ("valid", "all-nesterov"), ("mnist", "all-adam"), ("dropout", "all-adam")]


@pytest.mark.parametrize(("spec_name", "case"), CROSS)
def test_fifty_regularised_steps_agree_across_backends(spec_name, case):
    """As test_cross_backend.test_fifty_steps_agree, with a cosine schedule's rates."""
    from test_cross_backend import assert_close, batches, make_spec, start_weights

    for name in ("torch", "tensorflow"):
        pytest.importorskip(name)
    optimizer, extra = CASES[case]
    spec = make_spec(spec_name).override({"train.optimizer": optimizer, **extra})
    weights = start_weights(spec)
    models = [get_backend(name).compile(spec, weights=weights)
              for name in ("torch", "tensorflow")]
    data = batches(spec, 8, 5)
    schedule = CosineDecay(optimizer["learning_rate"], 40, warmup_steps=10)
    for model in models:
        for step in range(50):
            model.train_step(*data[step % len(data)], learning_rate=schedule.learning_rate(step))
    final = models[0].get_weights()
    moved = max(np.abs(final[k] - weights[k]).max() / np.abs(weights[k]).max() for k in final)
    assert moved > 1e-2
    assert_close(final, models[1].get_weights(), 1e-4,
                 f"{spec_name} weights after 50 {case} steps")
    state_t, state_f = (model.optimizer_state() for model in models)
    slots = {k: v for k, v in state_t.items() if k != "step"}
    if slots:
        assert_close(slots, {k: state_f[k] for k in slots}, 1e-3, "optimizer slots")


def test_fp16_clips_the_unscaled_gradients(backend_name):
    """Under fp16 the gradients are clipped after the loss scale is divided out: an SGD step
    with a small clip_norm moves the weights by exactly lr * clip_norm (clipping the scaled
    gradients would move them 2 ** 15 times less)."""
    spec = loads_spec(NET).override({"train.optimizer": {"kind": "sgd", "learning_rate": 0.1},
                                     "train.clip_norm": 0.01})
    model = get_backend(backend_name).compile(spec, weights=_weights(spec), precision="fp16")
    before = model.get_weights()
    model.train_step(*_batch(spec, 6, 1))
    after = model.get_weights()
    moved = np.sqrt(sum(float(np.sum((after[k].astype(np.float64) - before[k]) ** 2))
                        for k in trainable_names(spec)))
    assert moved == pytest.approx(0.1 * 0.01, rel=1e-3)
