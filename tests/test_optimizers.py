"""The fused Adam kernels of both backends (``convspec/backends/*/optimizers.py``): on by
default for a float32 model, the spec's Adam step by step (the NumPy reference and the
backend's own ops), and an optimizer state that round-trips exactly."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_backend

from convspec.backends import get_backend
from convspec.specification import loads_spec
from convspec.weights import init_weights, trainable_names

SPEC = """
name: adam
input: {height: 8, width: 7, channels: 2}
classes: 3
layers:
  - {kind: conv2d, name: conv, filters: 4, kernel: 3, padding: same, activation: relu}
  - {kind: maxpool, size: 2, stride: 2, padding: same}
  - {kind: flatten}
  - {kind: dense, name: fc, units: 3}
train: {optimizer: {kind: adam, learning_rate: 0.01, beta1: 0.8, beta2: 0.999, epsilon: 1.0e-3}}
"""


def batches(spec, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    shape = (6, spec.input.height, spec.input.width, spec.input.channels)
    return [(rng.normal(size=shape).astype(np.float32), rng.integers(0, spec.classes, 6))
            for _ in range(count)]


def compile_both(backend_name: str, spec):
    """(fused model, the same model with the op-by-op Adam), same weights."""
    require_backend(backend_name)
    backend, weights = get_backend(backend_name), init_weights(spec)
    fused, ops = (backend.compile(spec, weights=weights) for _ in range(2))
    optimizer = ops.optimizer
    optimizer.fused = False
    if backend_name == "tensorflow":  # the step size the ops expect (no k2 / k1 factor)
        ops._build_functions()
    return fused, ops


@pytest.mark.parametrize("backend_name", ["torch", "tensorflow"])
def test_fused_adam_is_the_spec_adam(backend_name):
    spec = loads_spec(SPEC)
    fused, ops = compile_both(backend_name, spec)
    assert fused.optimizer.fused and not ops.optimizer.fused
    c = spec.train.optimizer
    w = {k: v.astype(np.float64) for k, v in fused.get_weights().items()
         if k in trainable_names(spec)}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(x) for k, x in w.items()}
    for t, (x, y) in enumerate(batches(spec, 6), start=1):
        _, grads = fused.gradients(x, y, training=True)
        lr_t = c.learning_rate * np.sqrt(1 - c.beta2 ** t) / (1 - c.beta1 ** t)
        for k, g in grads.items():
            g = g.astype(np.float64)
            m[k] += (g - m[k]) * (1 - c.beta1)
            v[k] += (g * g - v[k]) * (1 - c.beta2)
            w[k] -= lr_t * m[k] / (np.sqrt(v[k]) + c.epsilon)
        fused.train_step(x, y)
        ops.train_step(x, y)
    got, by_ops, state = fused.get_weights(), ops.get_weights(), fused.optimizer_state()
    assert int(state["step"]) == 6
    for k, want in w.items():
        scale = np.max(np.abs(want))
        np.testing.assert_allclose(got[k], want, rtol=1e-5, atol=1e-5 * scale, err_msg=k)
        np.testing.assert_allclose(got[k], by_ops[k], rtol=1e-5, atol=1e-6 * scale, err_msg=k)
        for slot, ref in (("m", m[k]), ("v", v[k])):
            np.testing.assert_allclose(state[f"{slot}/{k}"], ref, rtol=1e-5,
                                       atol=1e-5 * np.max(np.abs(ref)), err_msg=f"{slot}/{k}")


@pytest.mark.parametrize("backend_name", ["torch", "tensorflow"])
def test_fused_adam_state_round_trips_exactly(backend_name):
    spec = loads_spec(SPEC)
    data = batches(spec, 8)
    a, _ = compile_both(backend_name, spec)
    for x, y in data[:4]:
        a.train_step(x, y)
    b = get_backend(backend_name).compile(spec, weights=a.get_weights())
    state = a.optimizer_state()
    b.set_optimizer_state(state)
    assert all(np.array_equal(b.optimizer_state()[k], state[k]) for k in state)
    for x, y in data[4:]:
        assert a.train_step(x, y, fetch=True) == b.train_step(x, y, fetch=True)
    wa, wb = a.get_weights(), b.get_weights()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_tensorflow_adam_runs_the_fused_kernel():
    require_backend("tensorflow")
    spec = loads_spec(SPEC)
    fused, ops = compile_both("tensorflow", spec)
    kinds = [{op.type for op in model._train.get_concrete_function().graph.get_operations()}
             for model in (fused, ops)]
    assert "ResourceApplyAdam" in kinds[0] and "ResourceApplyAdam" not in kinds[1]
