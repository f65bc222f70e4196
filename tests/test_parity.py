"""Backend parity: every backend against the shape table, the NumPy oracle and the documented
numerics (TF1 optimizers, Keras batch norm, seeded inverted dropout).

Parametrized over backends; one whose framework is missing, or whose modules are not
written yet, is skipped. Everything runs in float32 on CPU with small batches.

Covers: convspec.backends (every backend), convspec.backends.reference, convspec.dropout,
convspec.shapes (each backend against the NumPy oracle).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convspec.backends import StepResult, compile_model, get_backend, is_available
from convspec.backends.reference import ReferenceModel, softmax_cross_entropy
from convspec.dropout import multiplier
from convspec.errors import BackendError, ConvspecError
from convspec.shapes import infer_shapes
from convspec.specification import Spec, load_spec, loads_spec, validate_spec
from convspec.weights import init_weights, trainable_names

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "tensorflow")
TOL = 1e-5

# Awkward cases kept here so coverage never depends on tests/specs/valid.
INLINE = {
    # 10x8 stride-2 SAME conv (pads (0,1)), even [4,2] kernel SAME (pads (1,2), (0,1)),
    # SAME max pool with an odd input, SAME avg pool with one padded row/column.
    "asymmetric_same": """
name: asymmetric_same
input: {height: 10, width: 8, channels: 3}
classes: 4
layers:
  - {kind: conv2d, filters: 4, kernel: 3, stride: 2, padding: same, activation: leaky_relu}
  - {kind: conv2d, filters: 3, kernel: [4, 2], padding: same, activation: tanh}
  - {kind: maxpool, size: 3, stride: 2, padding: same}
  - {kind: avgpool, size: 2, stride: 1, padding: same}
  - {kind: flatten}
  - {kind: dense, units: 8, activation: sigmoid}
  - {kind: dense, units: 4}
""",
    # Explicit [2, 1] padding with dilation, max pools padded within and beyond half the
    # window, softmax over channels mid-network, padded average pool.
    "explicit_pads": """
name: explicit_pads
input: {height: 7, width: 7, channels: 2}
classes: 3
layers:
  - {kind: conv2d, filters: 3, kernel: 3, padding: [2, 1], dilation: [1, 2], activation: relu}
  - {kind: maxpool, size: 3, stride: 2, padding: 1}
  - {kind: maxpool, size: 3, stride: 1, padding: 2}
  - {kind: softmax}
  - {kind: avgpool, size: 3, stride: 2, padding: 1}
  - {kind: flatten}
  - {kind: dense, units: 3}
""",
    # Batch norm on a conv (4-D) and on a flat vector between flatten and dense (whose
    # per-feature parameters follow the flatten order), dropout, several dense layers.
    "batchnorm_flat": """
name: batchnorm_flat
input: {height: 6, width: 5, channels: 2}
classes: 3
layers:
  - {kind: conv2d, filters: 3, kernel: 3, padding: same, bias: false}
  - {kind: batchnorm, momentum: 0.8}
  - {kind: relu}
  - {kind: maxpool, size: 2, padding: same}
  - {kind: flatten}
  - {kind: batchnorm}
  - {kind: leaky_relu, alpha: 0.3}
  - {kind: dropout, rate: 0.3}
  - {kind: dense, units: 5, activation: relu}
  - {kind: batchnorm, epsilon: 0.01}
  - {kind: dense, units: 3}
""",
    # Flat vectors merged in torch's layout: a flatten (C, H, W order in torch) taken by
    # several layers, added to itself (one order) and to a dense output (two orders), flat
    # vectors of both kinds concatenated, batch norm and dropout on the results; grouped
    # convolutions with unequal strides (one input channel per group, and two), a dilated
    # depthwise convolution with explicit pads.
    "flat_merges": """
name: flat_merges
input: {height: 5, width: 4, channels: 3}
classes: 4
layers:
  - {kind: conv2d, name: c, filters: 2, kernel: 3, padding: same, activation: relu6}
  - {kind: flatten, name: f1}
  - {kind: dense, name: d1, units: 40, activation: tanh}
  - {kind: add, name: mixed, inputs: [f1, d1]}
  - {kind: batchnorm, name: bn, momentum: 0.8}
  - {kind: add, name: twice, inputs: [f1, f1]}
  - {kind: conv2d, name: g1, inputs: [input], filters: 6, kernel: [3, 2], stride: [2, 1],
     padding: same, groups: 3}
  - {kind: conv2d, name: g2, filters: 4, kernel: 2, stride: [1, 2], groups: 2}
  - {kind: depthwise_conv2d, name: dw, kernel: 2, dilation: [2, 1], padding: [1, 0],
     stride: [1, 2], depth_multiplier: 2}
  - {kind: flatten, name: f2}
  - {kind: concat, name: flats, inputs: [twice, f2, bn, d1]}
  - {kind: dropout, rate: 0.3}
  - {kind: dense, name: logits, units: 4}
""",
    # Ends flat without a dense layer after the flatten: the logits are in H, W, C order.
    "flat_tail": """
name: flat_tail
input: {height: 3, width: 5, channels: 1}
classes: 10
layers:
  - {kind: conv2d, filters: 2, kernel: [3, 1]}
  - {kind: flatten}
  - {kind: tanh}
""",
}

# No dropout, so train-mode numerics can be checked against NumPy exactly.
SMALL = """
name: small
input: {height: 7, width: 6, channels: 2}
classes: 3
layers:
  - {kind: conv2d, filters: 3, kernel: 3, stride: 2, padding: same, activation: tanh}
  - {kind: batchnorm, momentum: 0.7}
  - {kind: avgpool, size: 2, stride: 1, padding: same}
  - {kind: conv2d, filters: 4, kernel: 2, padding: same}
  - {kind: maxpool, size: 2, padding: same}
  - {kind: leaky_relu}
  - {kind: flatten}
  - {kind: batchnorm, momentum: 0.5}
  - {kind: dense, units: 6, activation: sigmoid}
  - {kind: dense, units: 3}
"""

DROPOUT = """
name: dropout_only
input: {height: 1, width: 1, channels: 64}
classes: 2
layers:
  - {kind: flatten}
  - {kind: dropout, rate: 0.5}
  - {kind: dense, units: 2, bias: false}
"""


def _spec_params() -> list:
    files = [ROOT / "specs" / "mnist.yaml",
             *sorted((ROOT / "tests" / "specs" / "valid").glob("*.yaml"))]
    params = [pytest.param(str(f), id=f.stem) for f in files]
    return params + [pytest.param(f"inline:{k}", id=k) for k in INLINE]


@functools.cache
def _spec(key: str) -> Spec:
    if key.startswith("inline:"):
        return loads_spec(INLINE[key[7:]])
    return load_spec(key)


def _with(spec: Spec, **train) -> Spec:
    data = spec.to_dict()
    data["train"].update(train)
    return validate_spec(data)


@functools.cache
def _usable(name: str) -> str | None:
    """None when the backend compiles a model, else why it cannot (it is skipped)."""
    try:
        if not is_available(name):
            return f"backend {name!r} is not installed"
        get_backend(name).compile(loads_spec(INLINE["flat_tail"]))
    except ImportError as exc:
        return f"backend {name!r} cannot be imported yet ({exc})"
    return None


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    reason = _usable(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture(params=_spec_params())
def spec(request: pytest.FixtureRequest) -> Spec:
    return _spec(request.param)


def _compile(backend: str, spec: Spec, weights: dict | None = None):
    return compile_model(get_backend(backend), spec, weights=weights, device="cpu")


def _weights(spec: Spec, seed: int = 1) -> dict[str, np.ndarray]:
    """init_weights with non-trivial biases and batch-norm parameters and statistics."""
    rng = np.random.default_rng(seed)
    ranges = {"bias": (-0.2, 0.2), "gamma": (0.5, 1.5), "beta": (-0.3, 0.3),
              "moving_mean": (-0.3, 0.3), "moving_variance": (0.5, 2.0)}
    out = {}
    for name, value in init_weights(spec).items():
        low_high = ranges.get(name.rsplit("/", 1)[-1])
        if low_high:
            value = rng.uniform(*low_high, value.shape)
        out[name] = value.astype(np.float32)
    return out


def _batch(spec: Spec, n: int = 4, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (n, spec.input.height, spec.input.width, spec.input.channels)
    return rng.random(shape, dtype=np.float32), rng.integers(0, spec.classes, n)


class TrainReference(ReferenceModel):
    """The oracle in training mode at optimizer step 0: batch norm normalises with the
    batch's biased stats, dropout applies convspec.dropout's masks."""

    def _layer(self, layer, row, x):
        if layer.kind == "dropout" and layer.rate > 0:
            return x * multiplier(x.shape, layer.rate, self.spec.train.seed, 0, row.index)
        if layer.kind != "batchnorm":
            return super()._layer(layer, row, x)
        axes = tuple(range(x.ndim - 1))
        gamma, beta = (self.weights[f"{row.name}/{k}"] for k in ("gamma", "beta"))
        return (x - x.mean(axes)) / np.sqrt(x.var(axes) + layer.epsilon) * gamma + beta


def _forward64(spec: Spec, weights: dict, images: np.ndarray, training: bool) -> list:
    """Float64 output of every layer (no float32 rounding, unlike ReferenceModel.activations)."""
    ref = (TrainReference if training else ReferenceModel)(spec, weights)
    values = ref.run(images.astype(np.float64))
    return [values[row.name] for row in ref.table.rows]


def _loss64(spec: Spec, weights: dict, images: np.ndarray, labels: np.ndarray,
            training: bool) -> float:
    return softmax_cross_entropy(_forward64(spec, weights, images, training)[-1], labels)


# -- forward pass ---------------------------------------------------------------------------

def test_activation_shapes_follow_the_shape_table(backend_name, spec):
    x, _ = _batch(spec)
    got = _compile(backend_name, spec, _weights(spec)).activations(x)
    rows = infer_shapes(spec).rows
    assert list(got) == [r.name for r in rows]
    for row in rows:
        assert got[row.name].shape == (len(x), *row.output), row.name
        assert got[row.name].dtype == np.float32, row.name


def test_activations_and_logits_match_reference(backend_name, spec):
    weights = _weights(spec)
    x, _ = _batch(spec, n=5)
    model = _compile(backend_name, spec, weights)
    want = ReferenceModel(spec, weights).activations(x)
    got = model.activations(x)
    for name, expected in want.items():
        assert np.max(np.abs(got[name] - expected)) <= TOL, name
    logits = model.predict(x, batch_size=2)  # batches of 2, 2, 1
    assert logits.dtype == np.float32 and logits.shape == (5, spec.classes)
    assert np.max(np.abs(logits - want[spec.layers[-1].name])) <= TOL
    assert np.array_equal(model.predict(x), model.predict(x))


# -- weights --------------------------------------------------------------------------------

def test_weights_round_trip_bit_exact(backend_name, spec):
    weights = _weights(spec)
    model = _compile(backend_name, spec)
    model.set_weights(weights)
    got = model.get_weights()
    assert list(got) == list(weights)
    for name, value in weights.items():
        assert got[name].dtype == np.float32 and np.array_equal(got[name], value), name


def test_bad_weights_raise_clear_errors(backend_name):
    spec = _spec("inline:batchnorm_flat")
    weights = _weights(spec)
    model = _compile(backend_name, spec, weights)
    missing = {k: v for k, v in weights.items() if k != "conv1/kernel"}
    extra = {**weights, "fc9/kernel": np.zeros((2, 2), np.float32)}
    wrong = {**weights, "fc1/kernel": weights["fc1/kernel"].T}
    for bad, needle in ((missing, "conv1/kernel"), (extra, "fc9/kernel"),
                        (wrong, "fc1/kernel")):
        with pytest.raises(ConvspecError, match=needle):
            model.set_weights(bad)
    with pytest.raises(ConvspecError, match="fc1/kernel"):
        _compile(backend_name, spec, wrong)
    for name, value in model.get_weights().items():  # a failed load changes nothing
        assert np.array_equal(value, weights[name]), name


# -- gradients ------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["small", "flat_merges"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_gradients_match_finite_differences(backend_name, training, source):
    spec = loads_spec(SMALL) if source == "small" else _spec("inline:flat_merges")
    weights = _weights(spec)
    x, y = _batch(spec, n=6)
    model = _compile(backend_name, spec, weights)
    loss, grads = model.gradients(x, y, training=training)
    assert sorted(grads) == sorted(trainable_names(spec))
    w64 = {k: v.astype(np.float64) for k, v in weights.items()}
    assert abs(loss - _loss64(spec, w64, x, y, training)) <= TOL
    rng, h = np.random.default_rng(3), 1e-6
    for name, grad in grads.items():
        assert grad.shape == weights[name].shape and grad.dtype == np.float32, name
        for flat in rng.choice(grad.size, size=min(3, grad.size), replace=False):
            index = np.unravel_index(flat, grad.shape)
            plus, minus = dict(w64), dict(w64)
            plus[name], minus[name] = w64[name].copy(), w64[name].copy()
            plus[name][index] += h
            minus[name][index] -= h
            fd = (_loss64(spec, plus, x, y, training) - _loss64(spec, minus, x, y, training))
            fd /= 2 * h
            assert abs(grad[index] - fd) <= 1e-5 + 1e-3 * abs(fd), (name, index, grad[index], fd)
    for name, value in model.get_weights().items():  # gradients() updates nothing
        assert np.array_equal(value, weights[name]), name


# -- training -------------------------------------------------------------------------------

def test_train_step_reports_pre_step_loss_and_accuracy(backend_name, spec):
    weights = _weights(spec)
    x, y = _batch(spec, n=6)
    w64 = {k: v.astype(np.float64) for k, v in weights.items()}
    logits = _forward64(spec, w64, x, training=True)[-1]
    model = _compile(backend_name, spec, weights)
    result = model.train_step(x, y, fetch=True)
    assert isinstance(result, StepResult)
    assert isinstance(result.loss, float) and isinstance(result.accuracy, float)
    assert abs(result.loss - softmax_cross_entropy(logits, y)) <= TOL
    assert result.accuracy == pytest.approx(float(np.mean(logits.argmax(1) == y)))
    assert model.train_step(x, y) is None
    assert int(model.optimizer_state()["step"]) == 2


def test_batchnorm_moving_statistics_update(backend_name):
    spec = loads_spec(SMALL)
    weights = _weights(spec)
    x, y = _batch(spec, n=6)
    w64 = {k: v.astype(np.float64) for k, v in weights.items()}
    outs = _forward64(spec, w64, x, training=True)
    model = _compile(backend_name, spec, weights)
    model.train_step(x, y)
    got = model.get_weights()
    for i, layer in enumerate(spec.layers):
        if layer.kind != "batchnorm":
            continue
        inputs = outs[i - 1] if i else x.astype(np.float64)
        axes = tuple(range(inputs.ndim - 1))
        m = layer.momentum
        for stat, batch in (("moving_mean", inputs.mean(axes)),
                            ("moving_variance", inputs.var(axes))):  # biased
            want = m * w64[f"{layer.name}/{stat}"] + (1 - m) * batch
            np.testing.assert_allclose(got[f"{layer.name}/{stat}"], want, rtol=1e-5, atol=1e-6)


OPTIMIZERS = {
    "adam": {"kind": "adam", "learning_rate": 0.01, "beta1": 0.8, "beta2": 0.9, "epsilon": 1e-3},
    "sgd": {"kind": "sgd", "learning_rate": 0.1},
    "momentum": {"kind": "momentum", "learning_rate": 0.05, "momentum": 0.9},
    "nesterov": {"kind": "momentum", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
}


def _numpy_step(opt: dict, t: int, w: dict, g: dict, slots: dict) -> None:
    """The registry docstring's formulas, in float64 (t counts from 1)."""
    for name, grad in g.items():
        if opt["kind"] == "sgd":
            w[name] -= opt["learning_rate"] * grad
        elif opt["kind"] == "momentum":
            a = slots["accum"][name] = opt["momentum"] * slots["accum"][name] + grad
            step = grad + opt["momentum"] * a if opt.get("nesterov") else a
            w[name] -= opt["learning_rate"] * step
        else:
            b1, b2 = opt["beta1"], opt["beta2"]
            lr_t = opt["learning_rate"] * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            m = slots["m"][name] = slots["m"][name] + (grad - slots["m"][name]) * (1 - b1)
            v = slots["v"][name] = slots["v"][name] + (grad ** 2 - slots["v"][name]) * (1 - b2)
            w[name] -= lr_t * m / (np.sqrt(v) + opt["epsilon"])


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_optimizer_updates_match_documented_formulas(backend_name, opt):
    config = OPTIMIZERS[opt]
    spec = _with(loads_spec(SMALL), optimizer=config)
    weights = _weights(spec)
    model = _compile(backend_name, spec, weights)
    slot_names = {"adam": ("m", "v"), "momentum": ("accum",), "sgd": ()}[config["kind"]]
    w = {k: weights[k].astype(np.float64) for k in trainable_names(spec)}
    slots = {s: {k: np.zeros_like(v) for k, v in w.items()} for s in slot_names}
    for t in range(1, 4):
        x, y = _batch(spec, n=6, seed=10 + t)
        _, grads = model.gradients(x, y, training=True)  # what this step will apply
        _numpy_step(config, t, w, {k: g.astype(np.float64) for k, g in grads.items()}, slots)
        model.train_step(x, y)
    got, state = model.get_weights(), model.optimizer_state()
    assert int(state["step"]) == 3 and state["step"].dtype == np.int64
    assert sorted(state) == sorted(["step", *(f"{s}/{k}" for s in slot_names for k in w)])
    moved = max(np.max(np.abs(v - weights[k])) / np.max(np.abs(v)) for k, v in w.items())
    assert moved > 1e-2  # big enough steps that a wrong formula cannot hide in the tolerance
    for name, value in w.items():
        scale = 1e-5 * np.max(np.abs(value))
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=scale, err_msg=name)
        for s in slot_names:
            want = slots[s][name]
            np.testing.assert_allclose(state[f"{s}/{name}"], want, rtol=1e-5,
                                       atol=1e-5 * np.max(np.abs(want)), err_msg=f"{s}/{name}")


@pytest.mark.parametrize("opt", ["adam", "nesterov"])
def test_optimizer_state_resume_is_bit_exact(backend_name, opt):
    spec = _with(_spec("inline:batchnorm_flat"), optimizer=OPTIMIZERS[opt])
    batches = [_batch(spec, n=8, seed=20 + i) for i in range(10)]
    a = _compile(backend_name, spec, _weights(spec))
    for x, y in batches[:5]:
        a.train_step(x, y)
    b = _compile(backend_name, spec)
    b.set_weights(a.get_weights())
    b.set_optimizer_state(a.optimizer_state())
    for got, want in ((b.optimizer_state(), a.optimizer_state()),
                      (b.get_weights(), a.get_weights())):
        assert sorted(got) == sorted(want)
        assert all(np.array_equal(got[k], want[k]) for k in want)
    for x, y in batches[5:]:
        ra, rb = a.train_step(x, y, fetch=True), b.train_step(x, y, fetch=True)
        assert ra == rb
    wa, wb = a.get_weights(), b.get_weights()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    sa, sb = a.optimizer_state(), b.optimizer_state()
    assert int(sa["step"]) == 10 and all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_bad_optimizer_state_raises(backend_name):
    spec = loads_spec(SMALL)  # Adam
    model = _compile(backend_name, spec)
    state = model.optimizer_state()
    for bad, needle in (({k: v for k, v in state.items() if k != "m/fc1/kernel"}, "m/fc1/kernel"),
                        ({**state, "accum/fc1/kernel": state["m/fc1/kernel"]}, "accum/fc1"),
                        ({**state, "v/conv1/kernel": state["v/conv1/kernel"][0]}, "v/conv1"),
                        ({**state, "step": np.array(-1)}, "step"),
                        ({**state, "step": np.array([2])}, "step")):
        with pytest.raises(ConvspecError, match=needle):
            model.set_optimizer_state(bad)


# -- dropout --------------------------------------------------------------------------------

def test_dropout_is_inverted_seeded_and_train_only(backend_name):
    spec = loads_spec(DROPOUT)
    zero = {"fc1/kernel": np.zeros((64, 2), np.float32)}
    x = np.random.default_rng(4).uniform(1, 2, (1, 1, 1, 64)).astype(np.float32)
    y = np.zeros(1, np.int64)
    model = _compile(backend_name, spec, zero)

    def dropped() -> np.ndarray:
        # logits are 0, so d loss / d kernel[i, 1] = 0.5 * (dropout output)[i]
        return 2 * model.gradients(x, y, training=True)[1]["fc1/kernel"][:, 1]

    out = dropped()
    kept = out != 0
    np.testing.assert_allclose(out[kept], x.ravel()[kept] / 0.5, rtol=1e-6)  # 1 / (1 - rate)
    assert 16 <= kept.sum() <= 48
    assert np.array_equal(dropped(), out)  # same (seed, step): same mask
    assert np.array_equal(_compile(backend_name, spec, zero).gradients(x, y, True)[1]["fc1/kernel"],
                          model.gradients(x, y, True)[1]["fc1/kernel"])
    eval_grad = 2 * model.gradients(x, y, training=False)[1]["fc1/kernel"][:, 1]
    np.testing.assert_allclose(eval_grad, x.ravel(), rtol=1e-6)  # inactive outside training
    model.set_optimizer_state({**model.optimizer_state(), "step": np.array(7, np.int64)})
    assert not np.array_equal(dropped(), out)  # another step: another mask
    reseeded = _compile(backend_name, _with(spec, seed=1), zero)
    assert not np.array_equal(2 * reseeded.gradients(x, y, True)[1]["fc1/kernel"][:, 1], out)


def test_train_step_uses_the_steps_dropout_masks(backend_name):
    spec = _with(loads_spec(DROPOUT), optimizer={"kind": "sgd", "learning_rate": 1.0})
    x = np.random.default_rng(5).uniform(1, 2, (3, 1, 1, 64)).astype(np.float32)
    y = np.array([0, 1, 0])
    model = _compile(backend_name, spec, {"fc1/kernel": np.zeros((64, 2), np.float32)})
    for _ in range(2):
        before = model.get_weights()["fc1/kernel"]
        grad = model.gradients(x, y, training=True)[1]["fc1/kernel"]
        model.train_step(x, y)
        np.testing.assert_allclose(model.get_weights()["fc1/kernel"], before - grad, atol=1e-6)
    want = ReferenceModel(spec, model.get_weights()).predict(x)
    assert np.max(np.abs(model.predict(x) - want)) <= TOL  # eval: no dropout


# -- devices and imports --------------------------------------------------------------------

def test_devices(backend_name):
    spec = _spec("inline:flat_tail")
    with pytest.raises(BackendError, match="device"):
        _compile_on(backend_name, spec, "gpu")
    assert _compile_on(backend_name, spec, "auto").device in ("cpu", "cuda")
    try:
        model = _compile_on(backend_name, spec, "cuda")
    except BackendError as exc:
        assert "cuda" in str(exc).lower()
    else:
        assert model.device == "cuda"


def _compile_on(backend: str, spec: Spec, device: str):
    return get_backend(backend).compile(spec, device=device)


def test_backend_module_is_light(backend_name):
    backend = get_backend(backend_name)
    code = (f"import sys, convspec.backends as b; b.get_backend({backend_name!r}); "
            f"import {type(backend).__module__}; "
            f"assert {backend.module!r} not in sys.modules, 'framework imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
