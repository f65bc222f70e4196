"""The shared backend base: one wording for bad input in every backend, and a third-party
backend (``numpy_backend.py``: NumPy, SGD) that writes only its framework part, registered
through the entry-point group, trains to the built-in backends' weights, dropout included."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKENDS, register_entry_point, require_backend, tiny_dataset

import convspec
from convspec.backends import StepResult, get_backend
from convspec.backends.base import BaseModel
from convspec.errors import BackendError, WeightsError
from convspec.specification import loads_spec
from convspec.weights import init_weights

MLP = """
name: mlp
input: {height: 4, width: 3, channels: 2}
classes: 3
layers:
  - {kind: flatten}
  - {kind: dense, units: 16, activation: relu}
  - {kind: dropout, rate: 0.5}
  - {kind: dense, units: 8}
  - {kind: relu}
  - {kind: dropout, rate: 0.25}
  - {kind: dense, units: 3}
train: {optimizer: {kind: sgd, learning_rate: 0.5}, batch_size: 8, seed: 5}
"""


@pytest.fixture
def numpy_backend(monkeypatch):
    register_entry_point(monkeypatch, "numpy", "numpy_backend:NumpyBackend")
    return get_backend("numpy")


def _batches(spec, n: int, count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (n, spec.input.height, spec.input.width, spec.input.channels)
    return [(rng.random(shape, dtype=np.float32), rng.integers(0, spec.classes, n))
            for _ in range(count)]


def _compile(name: str, spec, weights=None):
    """A built-in backend's model, or the NumPy backend's (registered by the fixture)."""
    if name != "numpy":
        require_backend(name)
    return get_backend(name).compile(spec, weights=weights)


@pytest.mark.parametrize("name", ["numpy", *BACKENDS])
def test_every_backend_words_bad_input_the_same(numpy_backend, name):
    spec = loads_spec(MLP)
    model = _compile(name, spec)
    assert isinstance(model, BaseModel)
    (x, y), = _batches(spec, 4, 1)
    with pytest.raises(BackendError) as info:
        model.predict(x[:, :3])
    assert str(info.value) == ("spec 'mlp' takes NHWC images of shape (N, 4, 3, 2); got an "
                               "array of shape (4, 3, 3, 2)")
    with pytest.raises(BackendError) as info:
        model.train_step(x, y + 2)
    assert str(info.value).startswith("labels must be in [0, 3); got values from ")
    with pytest.raises(BackendError, match=r"^labels must be 4 integers \(one per image\)"):
        model.gradients(x, y.astype(np.float32))
    for rate in (-0.1, float("inf"), "fast"):
        with pytest.raises(BackendError) as info:
            model.train_step(x, y, learning_rate=rate)
        assert str(info.value) == f"learning_rate must be a finite number >= 0, got {rate!r}"
    with pytest.raises(BackendError, match="batch_size must be positive, got -1"):
        model.predict(x, batch_size=-1)
    with pytest.raises(WeightsError, match="weights must be a mapping"):
        model.set_weights([1, 2])
    weights = model.get_weights()
    with pytest.raises(WeightsError, match=r"do not fit spec 'mlp': missing fc1/bias"):
        model.set_weights({k: v for k, v in weights.items() if k != "fc1/bias"})
    with pytest.raises(WeightsError, match=r"optimizer state does not fit spec 'mlp' with sgd "
                                           r"in fp32: unexpected m/fc1/kernel"):
        model.set_optimizer_state({"step": np.array(1), "m/fc1/kernel": weights["fc1/kernel"]})
    assert model.predict(x[:0]).shape == (0, 3)
    np.testing.assert_allclose(model.predict(x, batch_size=3), model.predict(x), atol=1e-6)
    assert repr(model) == f"{type(model).__name__}(spec='mlp', device='cpu')"


def test_a_third_party_backend_needs_only_its_framework_part(numpy_backend):
    spec = loads_spec(MLP)
    weights = init_weights(spec)
    model = numpy_backend.compile(spec, weights=weights)
    assert model.backend == "numpy" and model.get_weights().keys() == weights.keys()
    assert all(np.array_equal(model.get_weights()[k], weights[k]) for k in weights)
    data = _batches(spec, 8, 4)
    results = [model.train_step(x, y, fetch=True) for x, y in data]
    assert all(isinstance(r, StepResult) for r in results)
    state = model.optimizer_state()
    assert list(state) == ["step"] and state["step"] == 4 and state["step"].dtype == np.int64
    resumed = numpy_backend.compile(spec, weights=model.get_weights())
    resumed.set_optimizer_state(state)  # the same dropout masks from here on
    for x, y in data:
        model.train_step(x, y)
        resumed.train_step(x, y)
    assert all(np.array_equal(v, resumed.get_weights()[k]) for k, v in model.get_weights().items())
    with pytest.raises(BackendError, match="trains flatten, dense, relu, dropout layers"):
        numpy_backend.compile(loads_spec(MLP.replace("kind: relu", "kind: tanh")))


@pytest.mark.parametrize("name", BACKENDS)
def test_the_third_party_backend_trains_like_the_built_in_ones(numpy_backend, name):
    """Same weights after 40 SGD steps with dropout (same masks), within the cross-backend
    tests' tolerance; the same gradients in training mode."""
    spec = loads_spec(MLP)
    weights = init_weights(spec)
    ours, theirs = numpy_backend.compile(spec, weights=weights), _compile(name, spec, weights)
    data = _batches(spec, 8, 5)
    (x, y) = data[0]
    loss_a, grads_a = ours.gradients(x, y, training=True)
    loss_b, grads_b = theirs.gradients(x, y, training=True)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for name_, grad in grads_a.items():
        np.testing.assert_allclose(grad, grads_b[name_], rtol=1e-4, atol=1e-6, err_msg=name_)
    for step in range(40):
        a = ours.train_step(*data[step % len(data)], fetch=True)
        b = theirs.train_step(*data[step % len(data)], fetch=True)
        assert a.loss == pytest.approx(b.loss, rel=1e-4, abs=1e-6)
    final = theirs.get_weights()
    moved = max(np.abs(final[k] - weights[k]).max() / np.abs(weights[k]).max() for k in final)
    assert moved > 1e-2
    for key, value in ours.get_weights().items():
        error = np.abs(value.astype(np.float64) - final[key]).max() / np.abs(value).max()
        assert error <= 1e-4, (key, error)


def test_the_trainer_and_evaluation_run_a_third_party_backend(numpy_backend):
    data = tiny_dataset(n_train=64, n_val=16, n_test=32, size=6, classes=3)
    spec = loads_spec(MLP.replace("{height: 4, width: 3, channels: 2}",
                                  "{height: 6, width: 6, channels: 1}")
                      .replace("seed: 5}", "seed: 5, iterations: 30, validate_every: 10, "
                               "log_every: 10, eval_batch_size: 16, validation_size: 16}"))
    model = convspec.compile(spec, backend="numpy")
    lines: list[str] = []
    convspec.Trainer(spec, model, data, log=lines.append).fit()
    assert model.optimizer_state()["step"] == 30
    assert any("Optimization Iteration:" in line for line in lines)
    assert convspec.evaluate(model, data.test).accuracy > 0.5
