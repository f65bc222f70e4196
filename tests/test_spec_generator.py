"""The gate "validates means it trains": small random valid specs (``spec_generator``), each
compiled by every installed backend and checked against the NumPy reference on one batch,
forward and gradients. Bounded to about half a minute here; ``benchmarks/spec_gate.py`` runs
thousands and records its counts in ``benchmarks/README.md``. The gate found the oneDNN
stride bug (``test_verification``).

Covers: convspec.specification, convspec.backends, convspec.verification (random valid specs
train in every backend).
"""

from __future__ import annotations

import collections
import random

import pytest
from conftest import BACKENDS
from spec_generator import check_spec, draw_spec_data, random_spec

from convspec.backends import is_available

CI_SPECS = 200  # about 25 s for both backends; benchmarks/spec_gate.py runs thousands


def _backends() -> list[str]:
    names = [name for name in BACKENDS if is_available(name)]
    if not names:
        pytest.skip("no backend is installed")
    return names


def test_the_generator_draws_every_kind_and_the_edge_cases():
    rng = random.Random(0)
    kinds, inputs, strides, paddings = collections.Counter(), set(), set(), set()
    for _ in range(300):
        spec, _ = random_spec(rng)
        inputs.add((spec.input.height, spec.input.width, spec.input.channels))
        for layer in spec.layers:
            kinds[layer.kind] += 1
            if layer.kind == "conv2d":
                strides.add(layer.stride)
                paddings.add(layer.padding if isinstance(layer.padding, str) else "explicit")
    assert set(kinds) == {"conv2d", "maxpool", "avgpool", "relu", "tanh", "sigmoid",
                          "leaky_relu", "softmax", "batchnorm", "dropout", "flatten", "dense"}
    assert any(h == 1 or w == 1 for h, w, _ in inputs) and any(c == 1 for *_, c in inputs)
    assert any(max(s) >= 2 for s in strides) and paddings == {"same", "valid", "explicit"}
    data = draw_spec_data(random.Random(1))
    assert data["layers"][-1] == {"kind": "dense", "units": data["classes"]}


def _gate(count: int, seed: int) -> collections.Counter:
    backends, rng = _backends(), random.Random(seed)
    outcomes: collections.Counter = collections.Counter()
    failures = []
    for _ in range(count):
        spec, _ = random_spec(rng)
        for name in backends:
            outcome = check_spec(spec, name)
            outcomes[(name, outcome.kinds)] += 1
            if outcome.failure is not None:
                failures.append(f"{name}: {outcome.failure} in {spec.to_dict()}")
    assert not failures, "\n".join(failures[:5])
    return outcomes


@pytest.mark.slow
def test_random_valid_specs_compute_the_reference_in_every_backend():
    outcomes = _gate(CI_SPECS, seed=2026)
    assert sum(outcomes.values()) == CI_SPECS * len(_backends())
