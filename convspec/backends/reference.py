"""Pure-NumPy forward pass: slow, obviously correct, the oracle for backend parity.

It follows the semantics in ``convspec.backends`` literally: explicit padding from the shape
table, windows gathered by plain slicing, float64 accumulation, evaluation mode only. Each
layer kind is one op in ``OPS``; its input is the output of the layer it takes (a tuple of
them for a merge kind), its weights arrive in the order the kind declares them. Layers run in
the spec's order, which puts every layer after the layers it takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..graph import IMAGE_INPUT
from ..shapes import LayerShape
from ..specification import Spec
from ..weights import check_weights, init_weights


def _windows(x: np.ndarray, row: LayerShape, kernel: tuple[int, int], stride: tuple[int, int],
             dilation: tuple[int, int], fill: float) -> np.ndarray:
    """(N, Ho, Wo, kh, kw, C) view of every window after padding with ``fill``."""
    (top, bottom), (left, right) = row.pads
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    ho, wo = row.output[0], row.output[1]
    out = np.empty((x.shape[0], ho, wo, kernel[0], kernel[1], x.shape[3]), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            r0, c0 = i * dilation[0], j * dilation[1]
            out[:, :, :, i, j, :] = x[:, r0:r0 + stride[0] * (ho - 1) + 1:stride[0],
                                      c0:c0 + stride[1] * (wo - 1) + 1:stride[1], :]
    return out


# Activation kind -> function of the input and the activation's layer model (its parameters).
ACTIVATIONS: dict[str, Callable[[np.ndarray, Any], np.ndarray]] = {
    "relu": lambda x, layer: np.maximum(x, 0),
    "relu6": lambda x, layer: np.minimum(np.maximum(x, 0), 6),
    "tanh": lambda x, layer: np.tanh(x),
    "sigmoid": lambda x, layer: 1.0 / (1.0 + np.exp(-x)),
    "leaky_relu": lambda x, layer: np.where(x > 0, x, layer.alpha * x),
    "softmax": lambda x, layer: _softmax(x),
}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _activate(layer: Any, y: np.ndarray) -> np.ndarray:
    """``y`` through the layer's own ``activation:`` (conv2d, dense), if it has one."""
    act = layer.activation_layer
    return y if act is None else ACTIVATIONS[act.kind](y, act)


def _grouped(win: np.ndarray, kernel: np.ndarray, groups: int) -> np.ndarray:
    """(N, Ho, Wo, kh, kw, C) windows times the (kh, kw, C / groups, O) kernel -> (N, Ho, Wo, O)
    in float64; group g maps input channels g*C/groups... to output channels g*O/groups..."""
    n, ho, wo, kh, kw, c = win.shape
    out = kernel.shape[-1]
    cg, og = c // groups, out // groups
    rows = win.reshape(n * ho * wo, kh, kw, groups, cg).transpose(3, 0, 1, 2, 4)
    rows = rows.reshape(groups, n * ho * wo, kh * kw * cg)
    k = kernel.astype(np.float64).reshape(kh, kw, cg, groups, og).transpose(3, 0, 1, 2, 4)
    y = np.matmul(rows, k.reshape(groups, kh * kw * cg, og))  # (groups, N*Ho*Wo, O / groups)
    return y.transpose(1, 0, 2).reshape(n, ho, wo, out)


def _conv2d(layer: Any, row: LayerShape, x: np.ndarray, kernel: np.ndarray,
            bias: np.ndarray | None = None) -> np.ndarray:
    win = _windows(x, row, layer.kernel, layer.stride, layer.dilation, 0.0)
    y = _grouped(win, kernel, layer.groups)
    return _activate(layer, y if bias is None else y + bias)


def _depthwise_conv2d(layer: Any, row: LayerShape, x: np.ndarray, kernel: np.ndarray,
                      bias: np.ndarray | None = None) -> np.ndarray:
    # (kh, kw, C, m) is the grouped kernel (kh, kw, 1, C * m) with one group per channel
    kh, kw, c, m = kernel.shape
    win = _windows(x, row, layer.kernel, layer.stride, layer.dilation, 0.0)
    y = _grouped(win, kernel.reshape(kh, kw, 1, c * m), c)
    return _activate(layer, y if bias is None else y + bias)


def _maxpool(layer: Any, row: LayerShape, x: np.ndarray) -> np.ndarray:
    return np.nanmax(_windows(x, row, layer.size, layer.strides, (1, 1), np.nan), axis=(3, 4))


def _avgpool(layer: Any, row: LayerShape, x: np.ndarray) -> np.ndarray:
    return np.nanmean(_windows(x, row, layer.size, layer.strides, (1, 1), np.nan), (3, 4))


def _global_avgpool(layer: Any, row: LayerShape, x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(1, 2))


def _add(layer: Any, row: LayerShape, xs: tuple[np.ndarray, ...]) -> np.ndarray:
    return sum(xs[1:], xs[0])


def _concat(layer: Any, row: LayerShape, xs: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.concatenate(xs, axis=-1)


def _flatten(layer: Any, row: LayerShape, x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], row.output[0])  # NHWC row-major: H, W, C order


def _dense(layer: Any, row: LayerShape, x: np.ndarray, kernel: np.ndarray,
           bias: np.ndarray | None = None) -> np.ndarray:
    y = x @ kernel.astype(np.float64)
    return _activate(layer, y if bias is None else y + bias)


def _batchnorm(layer: Any, row: LayerShape, x: np.ndarray, scale: np.ndarray,
               offset: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    factor = scale / np.sqrt(variance.astype(np.float64) + layer.epsilon)
    return (x - mean) * factor + offset


def _identity(layer: Any, row: LayerShape, x: np.ndarray) -> np.ndarray:
    return x  # identity, and dropout (evaluation mode only)


def _activation(layer: Any, row: LayerShape, x: np.ndarray) -> np.ndarray:
    return ACTIVATIONS[layer.kind](x, layer)


# Layer kind -> op(layer, row, input, *weights in the declared slot order); the input of a merge
# kind is the tuple of its inputs.
OPS: dict[str, Callable[..., np.ndarray]] = {
    "conv2d": _conv2d, "maxpool": _maxpool, "avgpool": _avgpool, "flatten": _flatten,
    "dense": _dense, "dropout": _identity, "batchnorm": _batchnorm,
    "depthwise_conv2d": _depthwise_conv2d, "global_avgpool": _global_avgpool,
    "identity": _identity, "add": _add, "concat": _concat,
    **dict.fromkeys(ACTIVATIONS, _activation),
}


class ReferenceModel:
    """Evaluation-mode forward pass of a spec with canonical weights."""

    backend = "reference"
    device = "cpu"

    def __init__(self, spec: Spec, weights: Mapping[str, np.ndarray] | None = None):
        self.spec = spec
        self.table = spec.table
        self.weights = dict(weights) if weights is not None else init_weights(spec)
        check_weights(spec, self.weights)

    def _layer(self, layer: Any, row: LayerShape,
               x: np.ndarray | tuple[np.ndarray, ...]) -> np.ndarray:
        """One layer on its input (the tuple of its inputs for a merge kind)."""
        return OPS[layer.kind](layer, row, x, *(self.weights[name] for name in row.weights))

    def run(self, images: np.ndarray, keep: bool = True) -> dict[str, np.ndarray]:
        """Every layer's float64 output by name, running the layers in the spec's order; with
        ``keep=False`` an output is dropped once no later layer needs it (the last stays)."""
        rows = self.table.rows
        last_use = {source: i for i, row in enumerate(rows) for source in row.inputs}
        values = {IMAGE_INPUT: np.asarray(images, dtype=np.float64)}
        for i, (layer, row) in enumerate(zip(self.spec.layers, rows)):
            xs = tuple(values[source] for source in row.inputs)
            values[row.name] = self._layer(layer, row, xs[0] if len(xs) == 1 else xs)
            for source in set(row.inputs) if not keep else ():
                if last_use[source] == i:
                    del values[source]
        return values

    def activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output (float32) by name, NHWC or (N, units)."""
        values = self.run(images)
        return {row.name: values[row.name].astype(np.float32) for row in self.table.rows}

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Logits (N, classes), float32."""
        last = self.table.rows[-1].name
        return self.run(images, keep=False)[last].astype(np.float32)

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.weights.items()}


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy, computed stably in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())
