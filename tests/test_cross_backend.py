"""PyTorch and TensorFlow compile a spec to the same function: gradients, training runs,
weight files and optimizer state agree across the two frameworks.

Covers: convspec.backends.torch, convspec.backends.tensorflow, convspec.weights (the two
frameworks against each other).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import SPECS

from convspec.backends import compile_model, get_backend, is_available
from convspec.specification import validate_spec
from convspec.weights import init_weights, load_weights, save_weights

# Awkward geometry the two frameworks disagree on by default: odd sizes with SAME pooling
# (asymmetric pads), even SAME kernels, strides, VALID, explicit pads, dilation, averages
# over partly padded windows, batch norm, softmax over channels, stacked dense layers.
# Well-conditioned on purpose: a weight whose exact gradient is zero (a bias feeding batch
# norm, or any shift that batch norm removes) gets rounding noise that Adam turns into
# full-size steps, different in each framework (and between TensorFlow with and without XLA).
ODD = """
name: odd
input: {height: 7, width: 7, channels: 2}
classes: 3
layers:
  - {kind: conv2d, filters: 5, kernel: 4, padding: same, activation: leaky_relu}
  - {kind: maxpool, size: 2, padding: same}
  - {kind: conv2d, filters: 6, kernel: 3, stride: 2, padding: same, bias: false}
  - {kind: avgpool, size: 2, stride: 1, padding: same}
  - {kind: batchnorm, momentum: 0.9}
  - {kind: tanh}
  - {kind: flatten}
  - {kind: dense, units: 12, activation: sigmoid}
  - {kind: dense, units: 7, activation: relu}
  - {kind: dense, units: 3}
"""
EXPLICIT = """
name: explicit
input: {height: 9, width: 8, channels: 1}
classes: 5
layers:
  - {kind: conv2d, filters: 4, kernel: 3, padding: [2, 1], dilation: 2}
  - {kind: maxpool, size: 3, stride: 2, padding: 1}
  - {kind: avgpool, size: 2, stride: 1, padding: [1, 0]}
  - {kind: conv2d, filters: 3, kernel: [2, 3], stride: [2, 1], dilation: [1, 2], padding: [0, 2]}
  - {kind: leaky_relu, alpha: 0.1}
  - {kind: flatten}
  - {kind: dense, units: 5}
"""
VALID = """
name: valid
input: {height: 12, width: 11, channels: 3}
classes: 4
layers:
  - {kind: conv2d, filters: 8, kernel: 5, stride: 2, padding: valid, bias: false}
  - {kind: batchnorm}
  - {kind: relu}
  - {kind: conv2d, filters: 4, kernel: 3, stride: 2, padding: same, dilation: 2,
     activation: softmax}
  - {kind: avgpool, size: 2, padding: valid}
  - {kind: flatten}
  - {kind: dense, units: 16, activation: tanh}
  - {kind: dense, units: 9}
  - {kind: dense, units: 4}
"""
# Dropout on NHWC features (torch: NCHW), on flat features in torch's permuted order (right
# after a flatten) and after a dense layer: every backend draws convspec.dropout's masks.
DROPOUT = """
name: dropout
input: {height: 8, width: 7, channels: 2}
classes: 4
layers:
  - {kind: conv2d, filters: 6, kernel: 3, padding: same, activation: tanh}
  - {kind: dropout, rate: 0.3}
  - {kind: maxpool, size: 2, padding: same}
  - {kind: flatten}
  - {kind: dropout, rate: 0.2}
  - {kind: dense, units: 16, activation: relu}
  - {kind: dropout, rate: 0.5}
  - {kind: dense, units: 4}
"""
# A small residual network: a shortcut from the stem, batch norm, ReLU6, a depthwise
# convolution, add and concat (with the image itself), global average pooling.
RESIDUAL = """
name: residual
input: {height: 7, width: 7, channels: 2}
classes: 3
layers:
  - {kind: conv2d, name: stem, filters: 4, kernel: 3, padding: same, activation: tanh}
  - {kind: conv2d, name: c1, filters: 4, kernel: 3, padding: same, bias: false}
  - {kind: batchnorm, name: bn1, momentum: 0.9}
  - {kind: relu6, name: act}
  - {kind: depthwise_conv2d, name: dw, kernel: 3, padding: same}
  - {kind: add, name: join, inputs: [dw, stem]}
  - {kind: concat, name: cat, inputs: [join, input]}
  - {kind: global_avgpool, name: gap}
  - {kind: dense, name: fc, units: 3}
"""
INLINE = {"odd": ODD, "explicit": EXPLICIT, "valid": VALID, "dropout": DROPOUT,
          "residual": RESIDUAL}
SPEC_NAMES = ["mnist", "mnist_dropout", *INLINE]
OPTIMIZERS = {
    "adam": "{kind: adam, learning_rate: 0.001}",
    "sgd": "{kind: sgd, learning_rate: 0.1}",
    "momentum": "{kind: momentum, learning_rate: 0.02, momentum: 0.9}",
    "nesterov": "{kind: momentum, learning_rate: 0.02, momentum: 0.9, nesterov: true}",
}


@pytest.fixture(scope="module")
def backends():
    for name in ("torch", "tensorflow"):
        try:
            available = is_available(name)
        except Exception:  # a backend module that is missing or broken
            available = False
        if not available:
            pytest.skip(f"cross-backend tests need both backends; {name!r} is unavailable")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these tiny nets: OpenMP barriers cost more than they save,
    yield get_backend("torch"), get_backend("tensorflow")  # 5-50x when a core is busy
    torch.set_num_threads(threads)


def make_spec(name: str, optimizer: str | None = None):
    data = yaml.safe_load(INLINE.get(name) or (SPECS / f"{name}.yaml").read_text())
    if optimizer is not None:
        data.setdefault("train", {})["optimizer"] = yaml.safe_load(optimizer)
    return validate_spec(data)


def start_weights(spec) -> dict[str, np.ndarray]:
    """Initial weights with non-trivial batch-norm parameters and statistics."""
    weights = init_weights(spec)
    rng = np.random.default_rng(5)
    for name, value in weights.items():
        if name.rsplit("/", 1)[0].startswith("bn"):
            weights[name] = np.abs(rng.normal(1.0, 0.4, value.shape)).astype(np.float32)
    return weights


def batches(spec, n: int, count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (n, spec.input.height, spec.input.width, spec.input.channels)
    return [(rng.random(shape, dtype=np.float32), rng.integers(0, spec.classes, n))
            for _ in range(count)]


def assert_close(a: dict, b: dict, rtol: float, what: str) -> None:
    """max|a - b| <= rtol * max|a|, per tensor."""
    assert a.keys() == b.keys()
    errors = {name: float(np.abs(a[name].astype(np.float64) - b[name]).max())
              / max(float(np.abs(a[name]).max()), 1e-12) for name in a}
    bad = {name: err for name, err in errors.items() if err > rtol}
    assert not bad, f"{what}: relative errors above {rtol}: {bad}"


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("spec_name", SPEC_NAMES)
def test_gradients_agree(backends, spec_name, training):
    spec = make_spec(spec_name)
    weights = start_weights(spec)
    torch_model, tf_model = (compile_model(b, spec, weights=weights) for b in backends)
    ((x, y),) = batches(spec, 6, 1)
    loss_t, grads_t = torch_model.gradients(x, y, training=training)
    loss_f, grads_f = tf_model.gradients(x, y, training=training)
    assert abs(loss_t - loss_f) <= 1e-5 * max(abs(loss_t), 1.0)
    assert_close(grads_t, grads_f, 1e-4, f"{spec_name} gradients")


@pytest.mark.parametrize(("spec_name", "optimizer"), [
    ("mnist", "tutorial"), ("mnist", "sgd"), ("odd", "adam"), ("odd", "sgd"), ("odd", "momentum"),
    ("odd", "nesterov"), ("valid", "adam"), ("valid", "momentum"), ("explicit", "sgd"),
    ("mnist_dropout", "tutorial"), ("dropout", "adam"), ("dropout", "momentum"),
    ("residual", "adam"), ("residual", "momentum"),
])
def test_fifty_steps_agree(backends, spec_name, optimizer):
    spec = make_spec(spec_name, OPTIMIZERS.get(optimizer))  # tutorial: the spec's own Adam
    weights = start_weights(spec)
    torch_model, tf_model = (compile_model(b, spec, weights=weights) for b in backends)
    data = batches(spec, 8, 5)
    for model in (torch_model, tf_model):  # not interleaved: both pools spin-wait
        for step in range(50):
            model.train_step(*data[step % len(data)])
    final = torch_model.get_weights()
    moved = max(np.abs(final[k] - weights[k]).max() / np.abs(weights[k]).max() for k in final)
    assert moved > 1e-2  # the runs went somewhere: agreement is not trivial
    assert_close(final, tf_model.get_weights(), 1e-4,
                 f"{spec_name} weights after 50 {optimizer} steps")
    state_t, state_f = torch_model.optimizer_state(), tf_model.optimizer_state()
    assert state_t["step"] == state_f["step"] == 50
    slots = {k: v for k, v in state_t.items() if k != "step"}
    if slots:
        assert_close(slots, {k: state_f[k] for k in slots}, 1e-3, "optimizer slots")


def test_weights_and_optimizer_state_cross_through_files(backends, tmp_path):
    spec = make_spec("odd", OPTIMIZERS["adam"])
    torch_backend, tf_backend = backends
    source = torch_backend.compile(spec, weights=start_weights(spec))
    data = batches(spec, 8, 6)
    for x, y in data[:3]:
        source.train_step(x, y)
    trained = source.get_weights()

    save_weights(tmp_path / "torch.safetensors", trained, spec)
    tf_model = tf_backend.compile(spec, weights=load_weights(tmp_path / "torch.safetensors", spec))
    assert all(np.array_equal(v, trained[k]) for k, v in tf_model.get_weights().items())
    save_weights(tmp_path / "tf.safetensors", tf_model.get_weights(), spec)
    back = torch_backend.compile(spec)
    back.set_weights(load_weights(tmp_path / "tf.safetensors", spec))
    assert all(np.array_equal(v, trained[k]) for k, v in back.get_weights().items())

    state = source.optimizer_state()
    tf_model.set_optimizer_state(state)
    moved = tf_model.optimizer_state()
    assert moved.keys() == state.keys()
    assert all(np.array_equal(moved[k], state[k]) and moved[k].dtype == state[k].dtype
               for k in state)
    back.set_optimizer_state(moved)
    for model in (source, back, tf_model):  # a resumed run continues the same way
        for x, y in data[3:]:
            model.train_step(x, y)
    assert_close(source.get_weights(), tf_model.get_weights(), 1e-4, "resumed in tensorflow")
    assert all(np.array_equal(v, back.get_weights()[k])
               for k, v in source.get_weights().items())


@pytest.mark.parametrize("direction", ["torch->tensorflow", "tensorflow->torch"])
@pytest.mark.parametrize("spec_name", ["mnist", "valid"])
def test_trained_weights_predict_the_same_elsewhere(backends, spec_name, direction):
    spec = make_spec(spec_name, OPTIMIZERS["adam"])
    first, second = backends if direction.startswith("torch") else backends[::-1]
    trained = first.compile(spec, weights=start_weights(spec))
    for x, y in batches(spec, 8, 4):
        trained.train_step(x, y)
    other = second.compile(spec, weights=trained.get_weights())
    (x, _), = batches(spec, 10, 1, seed=1)
    np.testing.assert_allclose(other.predict(x), trained.predict(x), rtol=1e-5, atol=1e-5)
