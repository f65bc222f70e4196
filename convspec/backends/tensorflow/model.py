"""The spec as a ``tf.Module``: raw ``tf.nn`` ops on variables in the canonical layout.

TensorFlow already speaks convspec's layout (NHWC activations, HWIO kernels, flatten in
H, W, C order), so canonical weights load untouched. Every padding amount comes from the shape
table (convolutions take its pads as they are; pooling uses TF's 'SAME' only where that means
the table's pads), and each layer's static output shape is checked against the table while
tracing. Each layer kind is one op in ``OPS``; the variables are the declared weight slots
(``row.slots``: names, shapes, trainability), handed to the op in declared order.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from ...shapes import LayerShape
from ...specification import Spec

Padding = str | list[list[int]]

# Activation kind -> function of the input and the activation's layer model (its parameters);
# softmax is over the last (channel / unit) axis.
ACTIVATIONS: dict[str, Callable[[tf.Tensor, Any], tf.Tensor]] = {
    "relu": lambda x, layer: tf.nn.relu(x),
    "tanh": lambda x, layer: tf.math.tanh(x),
    "sigmoid": lambda x, layer: tf.math.sigmoid(x),
    "leaky_relu": lambda x, layer: tf.nn.leaky_relu(x, alpha=layer.alpha),
    "softmax": lambda x, layer: tf.nn.softmax(x, axis=-1),
}


def activation(layer: Any | None, x: tf.Tensor) -> tf.Tensor:
    """``x`` through the activation layer ``layer`` (unchanged for None)."""
    return x if layer is None else ACTIVATIONS[layer.kind](x, layer)


def conv_padding(row: LayerShape) -> Padding:
    """The table's pads, given to the convolution as they are ('VALID' when all zero).

    Measured on the MNIST convolutions: explicit pads and 'SAME' take the same time and give
    bit-identical results, so the table is used directly rather than re-derived by TF.
    """
    if row.pads == ((0, 0), (0, 0)):
        return "VALID"
    (top, bottom), (left, right) = row.pads
    return [[0, 0], [top, bottom], [left, right], [0, 0]]


def pool_padding(layer: Any, row: LayerShape) -> Padding:
    """'SAME' for spec 'same': TF's SAME pooling ignores padded cells (never the max, not in
    the count), and its pads are the table's (the table implements TF's SAME rule; the
    trace-time shape check and the parity tests hold it to that). Else the table's pads."""
    return "SAME" if layer.padding == "same" else conv_padding(row)


def dilate(kernel: tf.Tensor, dilation: tuple[int, int]) -> tf.Tensor:
    """The HWIO kernel with (d - 1) zeros between taps: a dilated convolution as a plain one.

    TensorFlow's CPU kernels cannot back-propagate through ``conv2d(dilations > 1)`` (only
    XLA can), so dilation is spelled out; the gradient flows back to the real taps only.
    """
    for axis, d in enumerate(dilation):
        if d == 1:
            continue
        k = kernel.shape[axis]
        spread = tf.expand_dims(kernel, axis + 1)  # (.., k, 1, ..) -> (.., k, d, ..)
        pads = [[0, 0]] * (len(kernel.shape) + 1)
        pads[axis + 1] = [0, d - 1]
        shape = list(kernel.shape)
        shape[axis] = k * d
        spread = tf.reshape(tf.pad(spread, pads), shape)
        kernel = tf.gather(spread, tf.range((k - 1) * d + 1), axis=axis)
    return kernel


# --- dropout masks: a counter-based hash, so the bits are the same with or without XLA, on
# any device, and in NumPy (TensorFlow's stateless Philox gives other numbers under XLA).
_M1, _M2, _U24 = 0x7FEB352D, 0x846CA68B, 1 << 24


def _mix(x: tf.Tensor) -> tf.Tensor:
    """lowbias32: a bijective uint32 hash with full avalanche."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16)) * tf.constant(_M1, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15)) * tf.constant(_M2, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _u32(value: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.bitwise.bitwise_and(value, 0xFFFFFFFF), tf.uint32)


def dropout_mask(shape: tf.Tensor, rate: float, seed: int, step: tf.Tensor,
                 layer_index: int, first_row: tf.Tensor | int = 0) -> tf.Tensor:
    """Inverted-dropout multiplier (0 or 1 / (1 - rate)) for one layer at one optimizer step.

    bits(i) = mix(mix(i) ^ key), key = mix(mix(layer_key ^ step_lo) ^ step_hi), where i is
    the row-major index into the whole (N, ...) input and layer_key the crc32 of
    "<seed>/<layer index>"; element i is kept when bits >> 8 >= ceil(rate * 2**24), i.e. when
    its uniform in [0, 1) is >= rate. A replica holding rows ``first_row ...`` of the global
    batch indexes from there, so data-parallel replicas draw the single-device masks.
    """
    layer_key = tf.constant(zlib.crc32(f"{seed}/{layer_index}".encode()), tf.uint32)
    step = tf.cast(step, tf.int64)
    key = _mix(tf.bitwise.bitwise_xor(layer_key, _u32(step)))
    key = _mix(tf.bitwise.bitwise_xor(key, _u32(tf.bitwise.right_shift(step, 32))))
    start = tf.cast(first_row, tf.int32) * tf.reduce_prod(shape[1:])
    index = tf.cast(tf.range(start, start + tf.reduce_prod(shape)), tf.uint32)
    bits = tf.bitwise.right_shift(_mix(tf.bitwise.bitwise_xor(_mix(index), key)), 8)
    keep = bits >= tf.constant(math.ceil(rate * _U24), tf.uint32)
    return tf.reshape(tf.cast(keep, tf.float32) * (1.0 / (1.0 - rate)), shape)


@dataclass
class Forward:
    """What one forward pass produced: logits, pending moving-stat assignments, activations."""

    logits: tf.Tensor
    updates: list[tuple[tf.Variable, tf.Tensor]] = field(default_factory=list)
    activations: dict[str, tf.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """What an op may need about the forward pass it is part of."""

    index: int  # the layer's position (dropout masks)
    training: bool
    step: tf.Tensor | None
    first_row: tf.Tensor | int
    seed: int
    dtype: tf.DType  # compute type (float32 variables are cast at use)
    out: Forward


def _conv2d(call: Call, layer: Any, row: LayerShape, x: tf.Tensor, kernel: tf.Variable,
            bias: tf.Variable | None = None) -> tf.Tensor:
    kernel = dilate(tf.cast(kernel, call.dtype), layer.dilation)
    y = tf.nn.conv2d(x, kernel, strides=[1, *layer.stride, 1], padding=conv_padding(row))
    if bias is not None:
        y = tf.nn.bias_add(y, tf.cast(bias, call.dtype))
    return activation(layer.activation_layer, y)


def _maxpool(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    padding = pool_padding(layer, row)
    if isinstance(padding, list):  # -inf padding: a padded cell never wins
        x, padding = tf.pad(x, padding, constant_values=-np.inf), "VALID"
    return tf.nn.max_pool2d(x, layer.size, layer.strides, padding)


def _avgpool(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    padding = pool_padding(layer, row)
    if not isinstance(padding, list):  # TF's SAME average already skips padded cells
        return tf.nn.avg_pool2d(x, layer.size, layer.strides, padding)
    # explicit pads: mean over zero-padded windows / fraction of real cells per window
    # (a constant of the spatial shape that Grappler / XLA fold at compile time)
    ones = tf.pad(tf.ones([1, *row.input[:2], 1], x.dtype), padding)
    real = tf.nn.avg_pool2d(ones, layer.size, layer.strides, "VALID")
    return tf.nn.avg_pool2d(tf.pad(x, padding), layer.size, layer.strides, "VALID") / real


def _flatten(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    return tf.reshape(x, [-1, row.output[0]])  # NHWC row-major: H, W, C order


def _dense(call: Call, layer: Any, row: LayerShape, x: tf.Tensor, kernel: tf.Variable,
           bias: tf.Variable | None = None) -> tf.Tensor:
    y = tf.matmul(x, tf.cast(kernel, call.dtype))
    if bias is not None:
        y = tf.nn.bias_add(y, tf.cast(bias, call.dtype))
    return activation(layer.activation_layer, y)


def _batchnorm(call: Call, layer: Any, row: LayerShape, x: tf.Tensor, scale: tf.Variable,
               offset: tf.Variable, averages: tf.Variable, variances: tf.Variable) -> tf.Tensor:
    """Keras semantics: batch mean and biased variance in training (also used for the moving
    update of ``averages`` / ``variances``, applied by the caller), the moving statistics in
    evaluation; float32 statistics whatever the compute type."""
    dtype, x = x.dtype, tf.cast(x, tf.float32)
    mean, variance = averages, variances
    if call.training:
        mean, variance = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
        m = layer.momentum
        call.out.updates.append((averages, averages * m + mean * (1.0 - m)))
        call.out.updates.append((variances, variances * m + variance * (1.0 - m)))
    return tf.cast(tf.nn.batch_normalization(x, mean, variance, offset, scale, layer.epsilon),
                   dtype)


def _dropout(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    if not call.training or layer.rate == 0:
        return x
    if call.step is None:
        raise ValueError("dropout in training mode needs the optimizer step")
    mask = dropout_mask(tf.shape(x), layer.rate, call.seed, call.step, call.index,
                        call.first_row)
    return x * tf.cast(mask, x.dtype)


def _activation(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    return activation(layer, x)


# Layer kind -> op(call, layer, row, input, *variables in the declared slot order).
OPS: dict[str, Callable[..., tf.Tensor]] = {
    "conv2d": _conv2d, "maxpool": _maxpool, "avgpool": _avgpool, "flatten": _flatten,
    "dense": _dense, "batchnorm": _batchnorm, "dropout": _dropout,
    **dict.fromkeys(ACTIVATIONS, _activation),
}


class Network(tf.Module):
    """Forward pass of a spec; call it only inside a ``tf.function`` (the layer dispatch
    below runs once, at trace time)."""

    def __init__(self, spec: Spec, weights: Mapping[str, np.ndarray],
                 compute_dtype: tf.DType = tf.float32):
        super().__init__(name="convspec_network")
        self.spec = spec
        self.compute_dtype = compute_dtype  # float32 variables, cast at use (mixed precision)
        self.table = spec.table
        slots = self.table.weights  # canonical (layer) order
        self.weights = {name: tf.Variable(np.asarray(weights[name], np.float32), name=name,
                                          trainable=slot.trainable)
                        for name, slot in slots.items()}
        self.trainable = [(n, v) for n, v in self.weights.items() if slots[n].trainable]

    def __call__(self, x: tf.Tensor, *, training: bool, step: tf.Tensor | None = None,
                 collect: bool = False, first_row: tf.Tensor | int = 0) -> Forward:
        """``first_row``: where ``x`` starts in the global batch (for dropout masks)."""
        out = Forward(x)
        x = tf.cast(x, self.compute_dtype)
        for index, (layer, row) in enumerate(zip(self.spec.layers, self.table.rows,
                                                 strict=True)):
            call = Call(index, training, step, first_row, self.spec.train.seed,
                        self.compute_dtype, out)
            x = OPS[layer.kind](call, layer, row, x, *(self.weights[n] for n in row.weights))
            if tuple(x.shape[1:]) != row.output:  # trace-time guard: the table is the truth
                raise AssertionError(f"{row.name}: TensorFlow built {tuple(x.shape[1:])}, "
                                     f"the shape table says {row.output}")
            if collect:
                out.activations[row.name] = tf.cast(x, tf.float32)
        out.logits = tf.cast(x, tf.float32)
        return out


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean softmax cross-entropy of the logits."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def accuracy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    hits = tf.equal(tf.argmax(logits, axis=1, output_type=labels.dtype), labels)
    return tf.reduce_mean(tf.cast(hits, tf.float32))
