"""The NumPy reference's ops for the graph kinds against the frameworks' own definitions
(independent oracles: torch's grouped convolution, TensorFlow's depthwise convolution and its
weight layout), and the graph walk that runs them."""

from __future__ import annotations

import numpy as np
import pytest

from convspec.backends.reference import ACTIVATIONS, ReferenceModel
from convspec.specification import loads_spec
from convspec.weights import init_weights


def one_layer(layer: str, size=(7, 6, 4)):
    flatten = "" if "global_avgpool" in layer else "\n  - {kind: flatten}"
    spec = loads_spec(f"""
name: one
input: {{height: {size[0]}, width: {size[1]}, channels: {size[2]}}}
classes: 2
layers:
  - {layer}{flatten}
  - {{kind: dense, units: 2}}
""")
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(size=v.shape).astype(np.float32)
               for k, v in init_weights(spec).items()}
    x = rng.normal(size=(3, *size)).astype(np.float32)
    return spec, weights, x, ReferenceModel(spec, weights).activations(x)[spec.layers[0].name]


@pytest.mark.parametrize("stride, padding", [(1, "same"), (2, "same"), (2, "valid")])
def test_grouped_convolution_is_torchs(stride, padding):
    torch = pytest.importorskip("torch")
    spec, weights, x, got = one_layer(
        f"{{kind: conv2d, name: c, filters: 6, kernel: 3, groups: 2, stride: {stride}, "
        f"padding: {padding}}}")
    (top, bottom), (left, right) = spec.table["c"].pads
    inp = torch.nn.functional.pad(torch.from_numpy(x).permute(0, 3, 1, 2).double(),
                                  (left, right, top, bottom))
    kernel = torch.from_numpy(weights["c/kernel"]).permute(3, 2, 0, 1).double()  # HWIO->OIHW
    want = torch.nn.functional.conv2d(inp, kernel, torch.from_numpy(weights["c/bias"]).double(),
                                      stride=stride, groups=2).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("multiplier, stride", [(1, 1), (2, 2), (3, 1)])
def test_depthwise_convolution_is_tensorflows(multiplier, stride):
    tf = pytest.importorskip("tensorflow")
    _, weights, x, got = one_layer(
        f"{{kind: depthwise_conv2d, name: d, kernel: [3, 2], stride: {stride}, padding: same, "
        f"depth_multiplier: {multiplier}}}")
    # Keras' DepthwiseConv2D kernel is (kh, kw, channels, multiplier), as convspec's
    want = tf.nn.depthwise_conv2d(x, weights["d/kernel"], [1, stride, stride, 1], "SAME")
    want = want.numpy() + weights["d/bias"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_global_pooling_relu6_identity():
    _, _, x, pooled = one_layer("{kind: global_avgpool, name: g}")
    np.testing.assert_allclose(pooled, x.mean(axis=(1, 2)), rtol=1e-6, atol=1e-6)
    _, _, x, clipped = one_layer("{kind: relu6, name: r}")
    np.testing.assert_array_equal(clipped, np.clip(x, 0, 6))
    np.testing.assert_array_equal(ACTIVATIONS["relu6"](np.array([-1.0, 3.0, 7.0]), None),
                                  [0.0, 3.0, 6.0])
    _, _, x, same = one_layer("{kind: identity, name: i}")
    np.testing.assert_array_equal(same, x)


def test_the_graph_walk_keeps_every_output_and_frees_what_it_can():
    spec = loads_spec("""
name: walk
input: {height: 4, width: 4, channels: 2}
classes: 2
layers:
  - {kind: conv2d, name: a, filters: 2, kernel: 1}
  - {kind: relu, name: b}
  - {kind: add, name: c, inputs: [b, a, input]}
  - {kind: flatten}
  - {kind: dense, units: 2}
""")
    model = ReferenceModel(spec)
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 2))
    everything = model.run(x)
    assert list(everything) == ["input", "a", "b", "c", "flatten1", "fc1"]
    np.testing.assert_array_equal(everything["c"], everything["b"] + everything["a"] + x)
    assert list(model.run(x, keep=False)) == ["fc1"]
    np.testing.assert_array_equal(model.predict(x), everything["fc1"].astype(np.float32))
