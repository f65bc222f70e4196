"""Pure-NumPy forward pass: slow, obviously correct, the oracle for backend parity.

It follows the semantics in ``convspec.backends`` literally: explicit padding from the shape
table, windows gathered by plain slicing, float64 accumulation, evaluation mode only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..shapes import LayerShape, infer_shapes
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


def activation(kind: str | None, x: np.ndarray, alpha: float = 0.2) -> np.ndarray:
    if kind is None:
        return x
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "tanh":
        return np.tanh(x)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if kind == "leaky_relu":
        return np.where(x > 0, x, alpha * x)
    if kind == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(kind)


class ReferenceModel:
    """Evaluation-mode forward pass of a spec with canonical weights."""

    backend = "reference"
    device = "cpu"

    def __init__(self, spec: Spec, weights: Mapping[str, np.ndarray] | None = None):
        self.spec = spec
        self.table = infer_shapes(spec)
        self.weights = dict(weights) if weights is not None else init_weights(spec)
        check_weights(spec, self.weights)

    def _layer(self, layer, row: LayerShape, x: np.ndarray) -> np.ndarray:
        w = self.weights
        kind = layer.kind
        if kind == "conv2d":
            win = _windows(x, row, layer.kernel, layer.stride, layer.dilation, 0.0)
            y = np.einsum("nhwijc,ijco->nhwo", win, w[f"{row.name}/kernel"].astype(np.float64))
            if layer.bias:
                y = y + w[f"{row.name}/bias"]
            return activation(layer.activation, y)
        if kind in ("maxpool", "avgpool"):
            win = _windows(x, row, layer.size, layer.strides, (1, 1), np.nan)
            return np.nanmax(win, axis=(3, 4)) if kind == "maxpool" else np.nanmean(win, (3, 4))
        if kind == "flatten":
            return x.reshape(x.shape[0], -1)  # NHWC row-major: H, W, C order
        if kind == "dense":
            y = x @ w[f"{row.name}/kernel"].astype(np.float64)
            if layer.bias:
                y = y + w[f"{row.name}/bias"]
            return activation(layer.activation, y)
        if kind == "batchnorm":
            p = {k: w[f"{row.name}/{k}"] for k in ("gamma", "beta", "moving_mean",
                                                    "moving_variance")}
            scale = p["gamma"] / np.sqrt(p["moving_variance"].astype(np.float64) + layer.epsilon)
            return (x - p["moving_mean"]) * scale + p["beta"]
        if kind == "dropout":
            return x
        return activation(kind, x, getattr(layer, "alpha", 0.2))

    def activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output (float32) by name, NHWC or (N, units)."""
        x = np.asarray(images, dtype=np.float64)
        out = {}
        for layer, row in zip(self.spec.layers, self.table.rows):
            x = self._layer(layer, row, x)
            out[row.name] = x.astype(np.float32)
        return out

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        return self.activations(images)[self.table.rows[-1].name]

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.weights.items()}


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy, computed stably in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())
