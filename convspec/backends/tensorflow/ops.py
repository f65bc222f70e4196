"""One TensorFlow op per layer kind (``OPS``), the loss and the accuracy (dropout masks:
``dropout_masks.py``).

TensorFlow already speaks convspec's layout (NHWC activations, HWIO kernels, flatten in
H, W, C order), so canonical weights need no conversion. Every padding amount comes from the
shape table; an op gets it as 'SAME' or 'VALID' where that means the table's pads, else as a
``tf.pad`` of the input and 'VALID' (``conv_padding``: a pad list falls off oneDNN). An op is
``op(call, layer, row, x, *weights)``: the forward pass it is part of, the layer's
declaration, its row of the shape table, its input (the tuple of its inputs for a merge kind)
and its declared weight slots (variables) in order.

Grouped convolution: TensorFlow's CPU kernels run ``conv2d`` with a grouped kernel forward, but
its gradient only through oneDNN (on by default on Linux x86; ``TF_ENABLE_ONEDNN_OPTS=0`` and builds
without it raise) or under XLA, whose CPU grouped convolution is 9-210x slower than the
alternatives (``benchmarks/README.md``). So a grouped conv2d is one ``depthwise_conv2d`` when
each group has one input channel, else one convolution per group joined with ``concat`` (as
fast as the native kernel for a few groups, and it runs in every configuration), on every device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from ...shapes import LayerShape, output_size, single_window_form
from .dropout_masks import dropout_mask

Padding = str | list[list[int]]
Pads = tuple[tuple[int, int], tuple[int, int]]

@dataclass(frozen=True)
class Mode:
    """How a forward pass runs: evaluation, or training for the update at ``step``."""

    training: bool = False
    update_stats: bool = False  # train_step updates moving statistics; gradients() must not
    step: tf.Tensor | None = None  # optimizer step, int64 (dropout masks)
    first_row: tf.Tensor | int = 0  # where the input starts in the global batch (dropout masks)


EVAL = Mode()


@dataclass(frozen=True)
class Call:
    """What an op may need about the forward pass it is part of."""

    index: int  # the layer's position in the spec
    mode: Mode
    layer_key: int  # convspec.dropout.layer_key of the run's seed and the layer (masks)
    activation: Any | None  # the layer's own ``activation_layer`` (conv2d, dense), if any
    dtype: tf.DType  # compute type (float32 variables are cast at use)
    updates: list[tuple[tf.Variable, tf.Tensor]] = field(default_factory=list)  # moving stats


# Activation kind -> function of the input and the activation's layer model (its parameters);
# softmax is over the last (channel / unit) axis.
ACTIVATIONS: dict[str, Callable[[tf.Tensor, Any], tf.Tensor]] = {
    "relu": lambda x, layer: tf.nn.relu(x),
    "relu6": lambda x, layer: tf.nn.relu6(x),
    "tanh": lambda x, layer: tf.math.tanh(x),
    "sigmoid": lambda x, layer: tf.math.sigmoid(x),
    "leaky_relu": lambda x, layer: tf.nn.leaky_relu(x, alpha=layer.alpha),
    "softmax": lambda x, layer: tf.nn.softmax(x, axis=-1),
}


def activation(layer: Any | None, x: tf.Tensor) -> tf.Tensor:
    """``x`` through the activation layer ``layer`` (unchanged for None)."""
    return x if layer is None else ACTIVATIONS[layer.kind](x, layer)


def conv_padding(pads: Pads, size: tuple[int, int], kernel: tuple[int, int],
                 strides: tuple[int, int]) -> Padding:
    """The convolution's padding as TensorFlow should get it: 'VALID' when the table's
    ``pads`` ((top, bottom), (left, right)) are all zero, 'SAME' when they are TF's SAME pads
    for a kernel of effective extent ``kernel`` sliding at ``strides`` over an input of
    ``size`` (H, W) (``convspec.shapes.output_size``'s 'same' rule is TF's), else the pads as
    a list, for the caller to ``tf.pad`` before a 'VALID' convolution.

    Never a pad list to the convolution itself: given explicit pads, TensorFlow runs both
    convolution gradients in Eigen instead of oneDNN, 1.7x slower per training step on the
    MNIST network (``benchmarks/README.md``, issue 15); 'SAME' and ``tf.pad`` + 'VALID' keep
    every kernel on oneDNN.
    """
    if pads == ((0, 0), (0, 0)):
        return "VALID"
    same = tuple(output_size(n, k, s, "same")[1:]
                 for n, k, s in zip(size, kernel, strides, strict=True))
    if pads == same:
        return "SAME"
    return pad_list(pads)


def pad_list(pads: Pads) -> list[list[int]]:
    """``tf.pad``'s NHWC paddings of the table's ((top, bottom), (left, right)) pads."""
    (top, bottom), (left, right) = pads
    return [[0, 0], [top, bottom], [left, right], [0, 0]]


def pool_padding(layer: Any, row: LayerShape) -> Padding:
    """'SAME' for spec 'same': TF's SAME pooling ignores padded cells (never the max, not in
    the count), and its pads are the table's (the table implements TF's SAME rule; the
    trace-time shape check and the parity tests hold it to that). Else 'VALID' for zero pads
    or the table's pads as a list (the caller pads)."""
    if layer.padding == "same":
        return "SAME"
    return "VALID" if row.pads == ((0, 0), (0, 0)) else pad_list(row.pads)


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


# --- one op per layer kind ---------------------------------------------------------------------

def _window_form(x: tf.Tensor, layer: Any, row: LayerShape, kernel: tf.Tensor,
                 unit_strides: bool = False) -> tuple[tf.Tensor, tuple[int, int], str]:
    """(input, strides, 'SAME' or 'VALID') of a convolution with the (dilated) HWIO
    ``kernel``: a stride along an axis of output extent 1 becomes 1 on the one window, the
    padded input cropped to it (``single_window_form``: oneDNN computes the strided form wrong
    for some shapes); pads that are neither zero nor TF's SAME pads are a ``tf.pad`` of the
    input (``conv_padding``). ``unit_strides``: the op will slide at stride 1 (and subsample),
    so 'SAME' must mean the table's pads at stride 1."""
    stride, (crop_h, crop_w) = single_window_form(row.output[:2], layer.kernel, layer.stride,
                                                  layer.dilation)
    size, extent = (row.input[0], row.input[1]), (kernel.shape[0], kernel.shape[1])
    if crop_h is not None or crop_w is not None:
        if row.pads != ((0, 0), (0, 0)):
            x = tf.pad(x, pad_list(row.pads))
        return x[:, :crop_h, :crop_w, :], stride, "VALID"
    padding = conv_padding(row.pads, size, extent, (1, 1) if unit_strides else stride)
    if isinstance(padding, list):
        x, padding = tf.pad(x, padding), "VALID"
    return x, stride, padding


def _depthwise(x: tf.Tensor, kernel: tf.Tensor, layer: Any, row: LayerShape) -> tf.Tensor:
    """``tf.nn.depthwise_conv2d`` of the (dilated) (kh, kw, C, m) kernel. Its kernels take
    only equal strides: another stride runs at stride 1 and keeps every stride-th output (the
    table's pads give exactly the strided positions). Explicit pads are a ``tf.pad`` first
    (``_window_form``; also, Grappler's shape inference of a depthwise convolution with
    explicit paddings aborts the process, a failed CHECK, in a loaded SavedModel)."""
    sh, sw = single_window_form(row.output[:2], layer.kernel, layer.stride, layer.dilation)[0]
    x, (sh, sw), padding = _window_form(x, layer, row, kernel, unit_strides=sh != sw)
    if sh == sw:
        return tf.nn.depthwise_conv2d(x, kernel, [1, sh, sw, 1], padding)
    return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], padding)[:, ::sh, ::sw, :]


def _grouped(x: tf.Tensor, kernel: tf.Tensor, layer: Any, row: LayerShape) -> tf.Tensor:
    """conv2d of a (kh, kw, C / groups, filters) kernel; see the module docstring."""
    kh, kw, group_channels, filters = kernel.shape
    if layer.groups > 1 and group_channels == 1:  # (kh, kw, 1, C * m): depthwise (kh, kw, C, m)
        return _depthwise(x, tf.reshape(kernel, [kh, kw, layer.groups, -1]), layer, row)
    x, stride, padding = _window_form(x, layer, row, kernel)
    strides = [1, *stride, 1]
    if layer.groups == 1:
        return tf.nn.conv2d(x, kernel, strides, padding)
    return tf.concat([tf.nn.conv2d(part, weights, strides, padding) for part, weights in zip(
        tf.split(x, layer.groups, axis=-1), tf.split(kernel, layer.groups, axis=-1),
        strict=True)], axis=-1)


def _biased(call: Call, y: tf.Tensor, bias: tf.Variable | None, plus: bool = False
            ) -> tf.Tensor:
    """``y`` plus the bias, if any, through the layer's own activation. ``plus``: add it with
    ``+`` (``AddV2``, the tutorial's form; Grappler still fuses it into the convolution)
    rather than ``tf.nn.bias_add``, whose gradient oneDNN folds into the filter gradient of a
    convolution, a kernel that is slower than the two apart for one input channel
    (``benchmarks/README.md``, issue 15). Either way each element gets the same sum."""
    if bias is not None:
        bias = tf.cast(bias, call.dtype)
        y = y + bias if plus else tf.nn.bias_add(y, bias)
    return activation(call.activation, y)


def _conv2d(call: Call, layer: Any, row: LayerShape, x: tf.Tensor, kernel: tf.Variable,
            bias: tf.Variable | None = None) -> tf.Tensor:
    kernel = dilate(tf.cast(kernel, call.dtype), layer.dilation)
    return _biased(call, _grouped(x, kernel, layer, row), bias, plus=True)


def _depthwise_conv2d(call: Call, layer: Any, row: LayerShape, x: tf.Tensor,
                      kernel: tf.Variable, bias: tf.Variable | None = None) -> tf.Tensor:
    """The canonical (kh, kw, C, m) kernel is TensorFlow's own depthwise layout."""
    kernel = dilate(tf.cast(kernel, call.dtype), layer.dilation)
    return _biased(call, _depthwise(x, kernel, layer, row), bias)


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


def _global_avgpool(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(x, axis=[1, 2])


def _add(call: Call, layer: Any, row: LayerShape, xs: tuple[tf.Tensor, ...]) -> tf.Tensor:
    y = xs[0]
    for x in xs[1:]:  # left to right, as every interpreter sums
        y = y + x
    return y


def _concat(call: Call, layer: Any, row: LayerShape, xs: tuple[tf.Tensor, ...]) -> tf.Tensor:
    return tf.concat(xs, axis=-1)  # channels of NHWC, features of flat inputs


def _flatten(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    return tf.reshape(x, [-1, row.output[0]])  # NHWC row-major: H, W, C order


def _dense(call: Call, layer: Any, row: LayerShape, x: tf.Tensor, kernel: tf.Variable,
           bias: tf.Variable | None = None) -> tf.Tensor:
    return _biased(call, tf.matmul(x, tf.cast(kernel, call.dtype)), bias)


def _batchnorm(call: Call, layer: Any, row: LayerShape, x: tf.Tensor, scale: tf.Variable,
               offset: tf.Variable, averages: tf.Variable, variances: tf.Variable) -> tf.Tensor:
    """Keras semantics: batch mean and biased variance in training (also used for the moving
    update of ``averages`` / ``variances`` when the mode says so, recorded in ``call.updates``
    for the caller to apply), the moving statistics in
    evaluation; float32 statistics whatever the compute type."""
    dtype, x = x.dtype, tf.cast(x, tf.float32)
    mean, variance = averages, variances
    if call.mode.training:
        mean, variance = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
        if call.mode.update_stats:
            m = layer.momentum
            call.updates.append((averages, averages * m + mean * (1.0 - m)))
            call.updates.append((variances, variances * m + variance * (1.0 - m)))
    return tf.cast(tf.nn.batch_normalization(x, mean, variance, offset, scale, layer.epsilon),
                   dtype)


def _identity(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    return x


def _dropout(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    """Inverted dropout, training only."""
    if not call.mode.training or layer.rate == 0:
        return x
    return x * dropout_mask(call, layer.rate, x)


def _activation(call: Call, layer: Any, row: LayerShape, x: tf.Tensor) -> tf.Tensor:
    return activation(layer, x)


# Layer kind -> op(call, layer, row, input, *variables in the declared slot order); the input
# of a merge kind is the tuple of its inputs.
OPS: dict[str, Callable[..., tf.Tensor]] = {
    "conv2d": _conv2d, "maxpool": _maxpool, "avgpool": _avgpool, "flatten": _flatten,
    "dense": _dense, "batchnorm": _batchnorm, "dropout": _dropout,
    "depthwise_conv2d": _depthwise_conv2d, "global_avgpool": _global_avgpool,
    "identity": _identity, "add": _add, "concat": _concat,
    **dict.fromkeys(ACTIVATIONS, _activation),
}


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean softmax cross-entropy of the logits."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def accuracy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean of argmax == label, float32."""
    hits = tf.equal(tf.argmax(logits, axis=1, output_type=labels.dtype), labels)
    return tf.reduce_mean(tf.cast(hits, tf.float32))
