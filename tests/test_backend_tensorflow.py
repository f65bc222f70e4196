"""TensorFlow backend specifics: lazy import, one trace per entry point, XLA, the optimizer
and batch-norm / dropout rules checked against NumPy, errors at the NumPy boundary."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import SPECS, lowbias32, require_backend

from convspec.backends import get_backend, is_available
from convspec.backends.reference import ReferenceModel
from convspec.errors import BackendError, WeightsError
from convspec.specification import load_spec, loads_spec
from convspec.weights import init_weights, trainable_names

AWKWARD = """
name: awkward
input: {height: 9, width: 8, channels: 2}
classes: 5
layers:
  - {kind: conv2d, filters: 4, kernel: 3, padding: [2, 1], dilation: 2, activation: leaky_relu}
  - {kind: maxpool, size: 3, stride: 2, padding: 1}
  - {kind: avgpool, size: 2, stride: 1, padding: [1, 0]}
  - {kind: conv2d, filters: 6, kernel: [2, 3], stride: [2, 1], dilation: [1, 2], padding: [0, 2]}
  - {kind: batchnorm, momentum: 0.8}
  - {kind: tanh}
  - {kind: conv2d, filters: 3, kernel: 4, stride: 2, padding: same, activation: softmax}
  - {kind: avgpool, size: 3, stride: 1, padding: same}
  - {kind: flatten}
  - {kind: dense, units: 7, activation: sigmoid}
  - {kind: dropout, rate: 0.4}
  - {kind: dense, units: 5}
train: {seed: 3, optimizer: {kind: adam, learning_rate: 0.01}}
"""


@pytest.fixture(scope="module")
def tf_backend():
    require_backend("tensorflow")
    return get_backend("tensorflow")


@pytest.fixture(scope="module")
def awkward():
    return loads_spec(AWKWARD)


def batch(spec, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (n, spec.input.height, spec.input.width, spec.input.channels)
    return rng.normal(size=shape).astype(np.float32), rng.integers(0, spec.classes, n)


def with_optimizer(text: str, optimizer: str) -> object:
    return loads_spec(text.replace("{kind: adam, learning_rate: 0.01}", optimizer))


# --- registry and import ---------------------------------------------------------------------

def test_importing_the_backend_does_not_import_tensorflow():
    code = ("import sys, convspec.backends.tensorflow as b; from convspec.backends import "
            "is_available; is_available('tensorflow'); b.TensorFlowBackend(); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_tensorflow_gives_install_hint(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    with pytest.raises(BackendError, match=r'pip install "convspec\[tf\]"'):
        get_backend("tf")
    assert not is_available("tensorflow")


# --- tracing and XLA -------------------------------------------------------------------------

def test_train_step_traces_once_across_calls_and_batch_sizes(tf_backend):
    spec = load_spec(SPECS / "mnist.yaml")
    model = tf_backend.compile(spec)
    for n in (8, 5, 8, 5):
        x, y = batch(spec, n, seed=n)
        assert model.train_step(x, y) is None
        result = model.train_step(x, y, fetch=True)
        assert np.isfinite(result.loss) and 0.0 <= result.accuracy <= 1.0
    assert model.tracing_count == 1
    assert model.optimizer_state()["step"] == 8
    x, _ = batch(spec, 7)
    model.predict(x, batch_size=3)  # batches of 3, 3, 1
    assert model._logits.experimental_get_tracing_count() == 1


def test_a_new_learning_rate_each_step_does_not_retrace(tf_backend):
    """The step's rate is an argument of the traced step, not a constant baked into it."""
    spec = load_spec(SPECS / "mnist.yaml").override({
        "train.optimizer.weight_decay": 0.01, "train.l2": 1e-4, "train.clip_norm": 1.0})
    model = tf_backend.compile(spec)
    x, y = batch(spec, 8)
    for step in range(5):
        model.train_step(x, y, learning_rate=1e-3 * (step + 1) / 5)
    assert model.tracing_count == 1
    with pytest.raises(BackendError, match="learning_rate must be a finite number >= 0"):
        model.train_step(x, y, learning_rate=float("nan"))


def _xla_available() -> bool:
    import tensorflow as tf

    try:
        tf.function(lambda x: x * 2.0, jit_compile=True)(tf.ones([2]))
    except Exception:
        return False
    return True


@pytest.mark.slow
def test_xla_gives_the_same_training_losses(tf_backend, awkward):
    if not _xla_available():
        pytest.skip("XLA is not available for this TensorFlow on CPU")
    plain, xla = tf_backend.compile(awkward), tf_backend.compile(awkward, jit=True)
    for step in range(3):  # dropout included: the mask hash gives the same bits under XLA
        x, y = batch(awkward, 6, seed=step)
        a, b = plain.train_step(x, y, fetch=True), xla.train_step(x, y, fetch=True)
        assert abs(a.loss - b.loss) <= 1e-5 * max(abs(a.loss), 1.0)
    x, _ = batch(awkward, 4, seed=9)
    np.testing.assert_allclose(plain.predict(x), xla.predict(x), rtol=1e-5, atol=1e-5)


# --- numerics against NumPy --------------------------------------------------------------------

def test_forward_matches_the_reference_on_awkward_padding(tf_backend, awkward):
    weights = init_weights(awkward)
    rng = np.random.default_rng(1)
    for name in ("bn1/gamma", "bn1/beta", "bn1/moving_mean", "bn1/moving_variance"):
        weights[name] = np.abs(rng.normal(1.0, 0.3, weights[name].shape)).astype(np.float32)
    model = tf_backend.compile(awkward, weights=weights)
    reference = ReferenceModel(awkward, weights)
    x, _ = batch(awkward, 5)
    got, want = model.activations(x), reference.activations(x)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)


PADDINGS = """
name: paddings
input: {height: 10, width: 9, channels: 3}
classes: 4
layers:
  - {kind: conv2d, name: same, filters: 4, kernel: 5, padding: same}
  - {kind: conv2d, name: ints_same, filters: 4, kernel: 3, padding: 1}
  - {kind: conv2d, name: ints_other, filters: 4, kernel: 3, padding: [2, 0]}
  - {kind: conv2d, name: strided, filters: 4, kernel: 3, stride: 2, padding: valid}
  - {kind: depthwise_conv2d, name: dw, kernel: 3, stride: [1, 2], padding: same}
  - {kind: conv2d, name: grouped, filters: 4, kernel: 3, groups: 2, padding: same}
  - {kind: flatten}
  - {kind: dense, units: 4}
train: {seed: 3, optimizer: {kind: adam, learning_rate: 0.01}}
"""


def test_convolutions_get_string_padding_and_match_the_reference(tf_backend):
    """'SAME' where the table's pads are TF's SAME pads (also given as integers), 'VALID' for
    zero pads, a ``tf.pad`` + 'VALID' for other pads: never a pad list, which puts both
    convolution gradients on Eigen (issue 15). Forward and gradients stay the reference's."""
    from convspec.verification import verify_model

    spec = loads_spec(PADDINGS)
    model = tf_backend.compile(spec, weights=init_weights(spec))
    graph = model._train.get_concrete_function().graph
    paddings = {}
    for op in graph.get_operations():
        if op.type.startswith(("Conv2D", "DepthwiseConv2dNative")):
            paddings.setdefault(op.type, []).append(op.get_attr("padding").decode())
    assert all(p in ("SAME", "VALID") for ps in paddings.values() for p in ps), paddings
    # forward order: same, ints_same, ints_other (padded), strided, grouped's two halves
    assert paddings["Conv2D"] == ["SAME", "SAME", "VALID", "VALID", "SAME", "SAME"]
    # the depthwise layer runs at stride 1 (unequal strides); SAME at stride 1 is its pads
    assert paddings["DepthwiseConv2dNative"] == ["SAME"]
    assert "Conv2DBackpropFilter" in paddings and "Conv2DBackpropInput" in paddings
    pads = [op for op in graph.get_operations() if op.type in ("Pad", "PadV2")]
    assert len(pads) == 1  # ints_other only
    assert model.net.table["ints_other"].pads == ((2, 2), (0, 0))
    result = verify_model(model, images=4, seed=2)
    assert result.ok, result


def numpy_update(kind: str, cfg, w, g, slots, t: int):
    """The registry's update rules, in float64 NumPy."""
    if kind == "sgd":
        return w - cfg.learning_rate * g
    if kind == "momentum":
        slots["accum"] = cfg.momentum * slots["accum"] + g
        step = g + cfg.momentum * slots["accum"] if cfg.nesterov else slots["accum"]
        return w - cfg.learning_rate * step
    lr_t = cfg.learning_rate * np.sqrt(1 - cfg.beta2 ** t) / (1 - cfg.beta1 ** t)
    slots["m"] = slots["m"] + (g - slots["m"]) * (1 - cfg.beta1)
    slots["v"] = slots["v"] + (g * g - slots["v"]) * (1 - cfg.beta2)
    return w - lr_t * slots["m"] / (np.sqrt(slots["v"]) + cfg.epsilon)


@pytest.mark.parametrize("optimizer", [
    "{kind: adam, learning_rate: 0.01}", "{kind: sgd, learning_rate: 0.1}",
    "{kind: momentum, learning_rate: 0.05, momentum: 0.9}",
    "{kind: momentum, learning_rate: 0.05, momentum: 0.8, nesterov: true}",
])
def test_optimizer_and_batchnorm_follow_the_registry_rules(tf_backend, optimizer):
    spec = with_optimizer(AWKWARD, optimizer)
    cfg = spec.train.optimizer
    model = tf_backend.compile(spec)
    names = trainable_names(spec)
    slots = {n: {s: 0.0 for s in ("m", "v", "accum")} for n in names}
    for t in range(1, 4):
        x, y = batch(spec, 6, seed=t)
        before = model.get_weights()
        _, grads = model.gradients(x, y, training=True)  # the masks of the coming step
        assert model.get_weights().keys() == before.keys()
        bn_input = model.activations(x)["conv2"].astype(np.float64)  # eval == train to bn1
        model.train_step(x, y)
        after = model.get_weights()
        for n in names:
            want = numpy_update(cfg.kind, cfg, before[n].astype(np.float64), grads[n], slots[n], t)
            np.testing.assert_allclose(after[n], want, rtol=1e-5, atol=1e-7, err_msg=n)
        m = spec.layer("bn1").momentum
        for slot, stat in (("moving_mean", bn_input.mean((0, 1, 2))),
                           ("moving_variance", bn_input.var((0, 1, 2)))):  # biased
            want = m * before[f"bn1/{slot}"] + (1 - m) * stat
            np.testing.assert_allclose(after[f"bn1/{slot}"], want, rtol=1e-5, atol=1e-7)
    state = model.optimizer_state()
    assert state["step"].dtype == np.int64 and state["step"] == 3
    assert set(state) == {"step"} | {f"{s}/{n}" for s in
                                     {"adam": ("m", "v"), "sgd": (),
                                      "momentum": ("accum",)}[cfg.kind] for n in names}


def test_gradients_update_nothing(tf_backend, awkward):
    model = tf_backend.compile(awkward)
    before, state = model.get_weights(), model.optimizer_state()
    x, y = batch(awkward, 6)
    model.gradients(x, y, training=True)
    model.gradients(x, y)
    after = model.get_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert model.optimizer_state()["step"] == state["step"]



def test_dropout_mask_is_the_documented_hash(tf_backend):
    import tensorflow as tf

    from convspec.backends.tensorflow.dropout_masks import dropout_mask
    from convspec.backends.tensorflow.ops import Call, Mode
    from convspec.dropout import layer_key

    seed, step, index, rate = 7, 2**32 + 5, 3, 0.3
    mode = Mode(training=True, step=tf.constant(step, tf.int64))
    call = Call(index, mode, layer_key(seed, index), None, tf.float32)
    got = dropout_mask(call, rate, tf.ones([40, 50])).numpy()
    key = lowbias32(np.array(zlib.crc32(f"{seed}/{index}".encode())) ^ (step & 0xFFFFFFFF))
    key = lowbias32(key ^ (step >> 32))
    bits = lowbias32(lowbias32(np.arange(2000)) ^ key) >> 8
    want = np.where(bits >= np.ceil(rate * 2**24), np.float32(1 / (1 - rate)), 0.0)
    np.testing.assert_array_equal(got.ravel(), want.astype(np.float32))
    assert abs((got > 0).mean() - (1 - rate)) < 0.05


def test_resumed_run_draws_the_same_dropout_masks(tf_backend, awkward):
    first = tf_backend.compile(awkward)
    batches = [batch(awkward, 6, seed=s) for s in range(4)]
    losses = [first.train_step(x, y, fetch=True).loss for x, y in batches[:2]]
    weights, state = first.get_weights(), first.optimizer_state()
    losses += [first.train_step(x, y, fetch=True).loss for x, y in batches[2:]]
    resumed = tf_backend.compile(awkward, weights=weights)
    resumed.set_optimizer_state(state)
    again = [resumed.train_step(x, y, fetch=True).loss for x, y in batches[2:]]
    assert again == losses[2:]
    assert np.array_equal(first.get_weights()["fc2/kernel"], resumed.get_weights()["fc2/kernel"])
    fresh = tf_backend.compile(awkward)  # step 0 again: the first step's masks
    assert fresh.train_step(*batches[0], fetch=True).loss == losses[0]


# --- the NumPy boundary ------------------------------------------------------------------------

def test_weights_round_trip_and_are_copies(tf_backend, awkward):
    weights = {k: np.random.default_rng(0).normal(size=v.shape).astype(np.float32)
               for k, v in init_weights(awkward).items()}
    model = tf_backend.compile(awkward)
    model.set_weights(weights)
    got = model.get_weights()
    assert all(got[k].dtype == np.float32 and np.array_equal(got[k], weights[k]) for k in got)
    got["fc1/kernel"][:] = 0
    assert np.array_equal(model.get_weights()["fc1/kernel"], weights["fc1/kernel"])


def test_predict_batches_and_handles_empty_input(tf_backend, awkward):
    model = tf_backend.compile(awkward)
    x, _ = batch(awkward, 7)
    np.testing.assert_allclose(model.predict(x, batch_size=2), model.predict(x), atol=1e-6)
    assert model.predict(x[:0]).shape == (0, 5)


def test_boundary_errors_are_clear(tf_backend, awkward):
    model = tf_backend.compile(awkward)
    x, y = batch(awkward, 4)
    with pytest.raises(BackendError, match=r"\(N, 9, 8, 2\)"):
        model.predict(x[:, :8])
    with pytest.raises(BackendError, match="labels must"):
        model.train_step(x, y[:3])
    with pytest.raises(BackendError, match="labels must"):
        model.train_step(x, y + 5)
    weights = model.get_weights()
    del weights["fc1/bias"]
    with pytest.raises(WeightsError, match="missing fc1/bias"):
        model.set_weights(weights)
    with pytest.raises(WeightsError, match="missing fc1/kernel"):
        tf_backend.compile(awkward, weights={k: v for k, v in weights.items() if k != "fc1/kernel"})
    state = model.optimizer_state()
    state["m/fc1/kernel"] = state["m/fc1/kernel"][:1]
    with pytest.raises(WeightsError, match="wrong m/fc1/kernel"):
        model.set_optimizer_state(state)


def test_devices(tf_backend, awkward):
    import tensorflow as tf

    assert tf_backend.compile(awkward, device="auto").device in ("cpu", "cuda")
    with pytest.raises(BackendError, match="unknown device"):
        tf_backend.compile(awkward, device="tpu")
    if not tf.config.list_physical_devices("GPU"):
        with pytest.raises(BackendError, match="no GPU"):
            tf_backend.compile(awkward, device="cuda")
