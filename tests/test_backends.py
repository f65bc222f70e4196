"""The backend registry: entry points, aliases, clear errors, every layer kind everywhere."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import BACKENDS, ROOT, register_entry_point, require_backend

import convspec
from convspec import backends
from convspec.backends import (
    STACK_KINDS,
    canonical_name,
    check_support,
    compile_model,
    features_used,
    get_backend,
    is_available,
    list_backends,
)
from convspec.backends.reference import ReferenceModel
from convspec.errors import BackendError
from convspec.specification import LAYER_KINDS, loads_spec
from convspec.weights import init_weights


class FakeBackend:
    """What a third-party package would register under ``convspec.backends``."""

    name = "fake"
    framework = "NumPy"
    module = "numpy"
    extra = "fake"

    def compile(self, spec, *, weights=None, device="cpu"):
        return ReferenceModel(spec, weights)


def test_builtin_backends_are_registered_through_entry_points():
    eps = importlib.metadata.entry_points(group=backends.ENTRY_POINT_GROUP)
    assert {ep.name for ep in eps} >= {"torch", "tensorflow"}
    assert list_backends() == sorted(set(list_backends()))
    assert {"torch", "tensorflow"} <= set(list_backends())


def test_a_third_party_backend_is_found_and_used(monkeypatch):
    module = types.ModuleType("convspec_fake_plugin")
    module.FakeBackend = FakeBackend
    monkeypatch.setitem(sys.modules, "convspec_fake_plugin", module)
    register_entry_point(monkeypatch, "fake", "convspec_fake_plugin:FakeBackend")
    assert "fake" in list_backends()
    spec = loads_spec((ROOT / "specs" / "mnist.yaml").read_text())
    model = get_backend("fake").compile(spec, weights=init_weights(spec))
    assert model.predict(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)


def test_a_backend_without_parallel_hooks_is_single_process():
    from convspec.backends import launch, parallel_layout
    from convspec.distributed import SINGLE
    from convspec.errors import UsageError

    fake = FakeBackend()
    assert parallel_layout(fake, 1, {}) is SINGLE
    assert launch(fake, 2, ["train", "spec.yaml"]) is None
    with pytest.raises(UsageError, match="--nproc 2: the fake backend trains on a single"):
        parallel_layout(fake, 2, {})
    with pytest.raises(UsageError, match="torchrun started this process, but the fake"):
        parallel_layout(fake, 1, {"WORLD_SIZE": "2", "RANK": "1"})
    assert parallel_layout(fake, 1, {"WORLD_SIZE": "1", "RANK": "0"}) is SINGLE


def test_parallel_hooks_are_the_backends_own():
    from convspec.backends import parallel_layout
    from convspec.distributed import Parallel

    class Replicated(FakeBackend):
        def parallel_layout(self, nproc, env):
            return Parallel(local_devices=nproc, launcher="fake")

    assert parallel_layout(Replicated(), 3, {}) == Parallel(local_devices=3, launcher="fake")


def test_aliases_and_unknown_names():
    assert canonical_name("tf") == "tensorflow" and canonical_name("PyTorch") == "torch"
    with pytest.raises(BackendError, match=r"unknown backend 'jax'; registered backends: .*torch"):
        get_backend("jax")


def test_missing_framework_is_one_clear_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(BackendError) as info:
        get_backend("torch")
    assert str(info.value) == "backend 'torch' needs PyTorch: pip install \"convspec[torch]\""
    assert not is_available("torch")


def test_broken_plugin_is_a_backend_error(monkeypatch):
    register_entry_point(monkeypatch, "broken", "no_such_module_anywhere:Backend")
    with pytest.raises(BackendError, match="cannot be loaded"):
        get_backend("broken")


def test_registry_imports_no_framework():
    code = ("import sys; from convspec.backends import list_backends, is_available; "
            "list_backends(); is_available('torch'); is_available('tensorflow'); "
            "print([m for m in ('torch', 'tensorflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def _spec_using(kind: str) -> str:
    layer = {
        "conv2d": "{kind: conv2d, filters: 2, kernel: 3, padding: same}",
        "maxpool": "{kind: maxpool, size: 2, padding: same}",
        "avgpool": "{kind: avgpool, size: 2, padding: same}",
        "leaky_relu": "{kind: leaky_relu, alpha: 0.1}",
        "dropout": "{kind: dropout, rate: 0.5}",
        "batchnorm": "{kind: batchnorm}",
        "depthwise_conv2d": "{kind: depthwise_conv2d, kernel: 3, padding: same, "
                            "depth_multiplier: 2}",
        "add": "{kind: add, inputs: [conv1, conv1]}",
        "concat": "{kind: concat, inputs: [conv1, input]}",
    }.get(kind, f"{{kind: {kind}}}")
    tail = "" if kind in ("flatten", "dense") else f"\n  - {layer}"
    flatten = "" if kind == "global_avgpool" else "\n  - {kind: flatten}"
    return f"""
name: uses-{kind}
input: {{height: 5, width: 5, channels: 1}}
classes: 3
layers:
  - {{kind: conv2d, filters: 2, kernel: 3, padding: same}}{tail}{flatten}
  - {{kind: dense, units: 4}}
  - {{kind: dense, units: 3}}
"""


@pytest.mark.parametrize("kind", LAYER_KINDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_layer_kind_compiles_in_every_backend(backend, kind):
    require_backend(backend)
    spec = loads_spec(_spec_using(kind))
    assert any(layer.kind == kind for layer in spec.layers)
    weights = init_weights(spec)
    x = np.random.default_rng(0).random((2, 5, 5, 1), dtype=np.float32)
    got = convspec.compile(spec, backend, weights=weights).predict(x)
    np.testing.assert_allclose(got, ReferenceModel(spec, weights).predict(x), atol=1e-5)


# --------------------------------------------------------------------------- what a backend builds

GRAPH = """
name: graph
input: {height: 6, width: 6, channels: 2}
classes: 3
layers:
  - {kind: conv2d, name: a, filters: 4, kernel: 3, padding: same, groups: 2}
  - {kind: conv2d, name: b, filters: 4, kernel: 1, activation: relu6}
  - {kind: add, name: join, inputs: [b, a]}
  - {kind: global_avgpool}
  - {kind: dense, units: 3}
"""


class GraphBackend(FakeBackend):
    """A backend that declares it builds every kind and feature (the NumPy reference does)."""

    layer_kinds = frozenset(LAYER_KINDS)
    features = frozenset(backends.FEATURES)


def test_a_backend_that_declares_nothing_builds_the_stacks_of_before():
    spec = loads_spec(GRAPH)
    assert features_used(spec) == {"graphs": ["join"], "grouped_conv2d": ["a"]}
    with pytest.raises(BackendError) as info:
        compile_model(FakeBackend(), spec)
    message = str(info.value)
    assert message.startswith("the fake backend cannot build spec 'graph' yet: ")
    for part in ("no op for layer kind 'relu6' (b)", "no op for layer kind 'add' (join)",
                 "no op for layer kind 'global_avgpool' (global_pool1)",
                 "no graph connections (layers that take other layers than the previous "
                 "one), used by join",
                 "no grouped convolution (conv2d with groups > 1), used by a"):
        assert part in message
    stack = loads_spec(_spec_using("conv2d"))
    assert {layer.kind for layer in stack.layers} <= STACK_KINDS
    check_support(FakeBackend(), stack)  # no error


def test_a_stack_written_with_inputs_is_still_a_stack():
    spec = loads_spec(_spec_using("conv2d").replace(
        "{kind: flatten}", "{kind: flatten, inputs: [conv2]}"))
    assert spec.layers[2].inputs == ["conv2"] and features_used(spec) == {}
    check_support(FakeBackend(), spec)


def test_a_backend_that_declares_graphs_compiles_them():
    spec = loads_spec(GRAPH)
    model = compile_model(GraphBackend(), spec)
    x = np.random.default_rng(0).random((2, 6, 6, 2), dtype=np.float32)
    assert model.predict(x).shape == (2, 3)


@pytest.mark.parametrize("name", BACKENDS)
def test_torch_and_tensorflow_build_every_kind_and_feature(name):
    require_backend(name)
    backend = get_backend(name)
    assert backend.layer_kinds == frozenset(LAYER_KINDS)
    assert backend.features == frozenset(backends.FEATURES)
    spec = loads_spec(GRAPH)
    weights = init_weights(spec)
    x = np.random.default_rng(0).random((2, 6, 6, 2), dtype=np.float32)
    got = compile_model(backend, spec, weights=weights).predict(x)
    np.testing.assert_allclose(got, ReferenceModel(spec, weights).predict(x), atol=1e-5)
