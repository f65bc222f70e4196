"""One torch op per layer kind (``OPS``), the loss and the accuracy (dropout masks:
``dropout_masks.py``).

Ops run NCHW (the fast path; ``layout.py`` converts at the edge) with TensorFlow numerics.
Every padding amount comes from the shape table (``row.pads``), never recomputed here. An op
is ``op(call, layer, row, x, *weights)``: the forward pass it is part of, the layer's
declaration, its row of the shape table, its input and its declared weight slots in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ...shapes import LayerShape, single_window_form
from .dropout_masks import dropout_mask

Pads = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Mode:
    """How a forward pass runs: evaluation, or training for one optimizer update."""

    training: bool = False
    update_stats: bool = False  # train_step updates moving statistics; gradients() must not
    keys: torch.Tensor | None = None  # int64, per layer: its dropout key at this update
    first_row: int = 0  # where the input starts in the global batch (dropout masks)


EVAL = Mode()


@dataclass(frozen=True)
class Call:
    """What an op may need about the forward pass it is part of."""

    index: int  # the layer's position in the spec
    mode: Mode
    activation: Any | None  # the layer's own ``activation_layer`` (conv2d, dense), if any
    order: torch.Tensor | None  # canonical index of each flat input feature, None: identity


# Activation kind -> function of the input and the activation's layer model (its parameters);
# softmax is over channels (dim 1 in NCHW).
ACTIVATIONS: dict[str, Callable[[torch.Tensor, Any], torch.Tensor]] = {
    "relu": lambda x, layer: torch.relu(x),
    "relu6": lambda x, layer: F.relu6(x),
    "tanh": lambda x, layer: torch.tanh(x),
    "sigmoid": lambda x, layer: torch.sigmoid(x),
    "leaky_relu": lambda x, layer: F.leaky_relu(x, negative_slope=layer.alpha),
    "softmax": lambda x, layer: torch.softmax(x, dim=1),
}


def activation(layer: Any | None, x: torch.Tensor) -> torch.Tensor:
    """``x`` through the activation layer ``layer`` (unchanged for None)."""
    return x if layer is None else ACTIVATIONS[layer.kind](x, layer)


def split_pads(pads: Pads, limit: tuple[int, int] | None = None
               ) -> tuple[tuple[int, int, int, int] | None, tuple[int, int]]:
    """(explicit F.pad amounts or None, symmetric padding for the op itself).

    Symmetric padding (within ``limit``, torch's max-pool restriction) goes to the op, which
    avoids a copy; anything else (TF SAME's larger half at the bottom/right) is padded first.
    """
    (top, bottom), (left, right) = pads
    if top == bottom and left == right and (limit is None or (top <= limit[0]
                                                              and left <= limit[1])):
        return None, (top, left)
    return (left, right, top, bottom), (0, 0)


# --- one op per layer kind ---------------------------------------------------------------------

def _convolution(call: Call, layer: Any, row: LayerShape, x: torch.Tensor,
                 kernel: torch.Tensor, bias: torch.Tensor | None, groups: int) -> torch.Tensor:
    """A stride along an axis of output extent 1 becomes 1 on the one window, cropped
    (``single_window_form``: oneDNN computes the strided form wrong for some shapes)."""
    stride, (crop_h, crop_w) = single_window_form(row.output[:2], layer.kernel, layer.stride,
                                                  layer.dilation)
    pad, padding = split_pads(row.pads)
    if crop_h is not None or crop_w is not None:
        (top, bottom), (left, right) = row.pads
        pad, padding = (left, right, top, bottom), (0, 0)
    if pad is not None:
        x = F.pad(x, pad)
    if crop_h is not None or crop_w is not None:
        x = x[:, :, :crop_h, :crop_w]
    y = F.conv2d(x, kernel, bias, stride, padding, layer.dilation, groups)
    return activation(call.activation, y)


def _conv2d(call: Call, layer: Any, row: LayerShape, x: torch.Tensor, kernel: torch.Tensor,
            bias: torch.Tensor | None = None) -> torch.Tensor:
    """Grouped when ``groups`` > 1: torch's own groups mean the same channels."""
    return _convolution(call, layer, row, x, kernel, bias, layer.groups)


def _depthwise_conv2d(call: Call, layer: Any, row: LayerShape, x: torch.Tensor,
                      kernel: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """One group per input channel; the kernel is stored (C * m, 1, kh, kw), see layout.py."""
    return _convolution(call, layer, row, x, kernel, bias, row.input[2])


def _maxpool(call: Call, layer: Any, row: LayerShape, x: torch.Tensor) -> torch.Tensor:
    """Padded cells are -inf, so they never win (SAME windows always hold a real cell)."""
    pad, padding = split_pads(row.pads, (layer.size[0] // 2, layer.size[1] // 2))
    if pad is not None:
        x = F.pad(x, pad, value=float("-inf"))
    return F.max_pool2d(x, layer.size, layer.strides, padding)


def _avgpool(call: Call, layer: Any, row: LayerShape, x: torch.Tensor) -> torch.Tensor:
    """Sum over the zero-padded input divided by the count of real cells per window: exact
    for any padding (asymmetric too), unlike count_include_pad, whose count is only right for
    padding torch itself applies."""
    if not any(row.pads[0] + row.pads[1]):
        return F.avg_pool2d(x, layer.size, layer.strides)
    (top, bottom), (left, right) = row.pads
    pad = (left, right, top, bottom)
    ones = F.pad(torch.ones(1, 1, row.input[0], row.input[1], device=x.device), pad)
    count = F.avg_pool2d(ones, layer.size, layer.strides, divisor_override=1)
    return F.avg_pool2d(F.pad(x, pad), layer.size, layer.strides, divisor_override=1) / count


def _global_avgpool(call: Call, layer: Any, row: LayerShape, x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


def _add(call: Call, layer: Any, row: LayerShape, xs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    y = xs[0]
    for x in xs[1:]:  # left to right, as every interpreter sums
        y = y + x
    return y


def _concat(call: Call, layer: Any, row: LayerShape,
            xs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return torch.cat(xs, dim=1)  # channels of NCHW, features of flat inputs


def _flatten(call: Call, layer: Any, row: LayerShape, x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)  # C, H, W order; see layout.py


def _dense(call: Call, layer: Any, row: LayerShape, x: torch.Tensor, kernel: torch.Tensor,
           bias: torch.Tensor | None = None) -> torch.Tensor:
    """The kernel is kept as canonical (inputs, units), unlike ``nn.Linear``, so ``x @ kernel``
    needs no transpose."""
    y = torch.mm(x, kernel) if bias is None else torch.addmm(bias, x, kernel)
    return activation(call.activation, y)


def _batchnorm(call: Call, layer: Any, row: LayerShape, x: torch.Tensor, scale: torch.Tensor,
               offset: torch.Tensor, averages: torch.Tensor,
               variances: torch.Tensor) -> torch.Tensor:
    """Keras semantics: batch mean and biased variance in training (also used to update
    ``averages`` / ``variances`` in place, when the mode says so), the moving statistics in
    evaluation; float32 statistics whatever the compute type."""
    x = x.float()
    shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
    if call.mode.training:
        var, mean = torch.var_mean(x, dim=(0, 2, 3) if x.dim() == 4 else 0, correction=0,
                                   keepdim=True)
        if call.mode.update_stats:
            m = layer.momentum
            with torch.no_grad():
                averages.mul_(m).add_(mean.reshape(-1), alpha=1 - m)
                variances.mul_(m).add_(var.reshape(-1), alpha=1 - m)
    else:
        mean, var = averages.view(shape), variances.view(shape)
    factor = scale.view(shape) * torch.rsqrt(var + layer.epsilon)
    return (x - mean) * factor + offset.view(shape)


def _identity(call: Call, layer: Any, row: LayerShape, x: torch.Tensor) -> torch.Tensor:
    return x


def _dropout(call: Call, layer: Any, row: LayerShape, x: torch.Tensor) -> torch.Tensor:
    """Inverted dropout, training only."""
    if not call.mode.training or layer.rate == 0:
        return x
    return x * dropout_mask(call, layer.rate, x)


def _activation(call: Call, layer: Any, row: LayerShape, x: torch.Tensor) -> torch.Tensor:
    return activation(layer, x)


# Layer kind -> op(call, layer, row, input, *weights in the declared slot order); the input of
# a merge kind is the tuple of its inputs.
OPS: dict[str, Callable[..., torch.Tensor]] = {
    "conv2d": _conv2d, "maxpool": _maxpool, "avgpool": _avgpool, "flatten": _flatten,
    "dense": _dense, "batchnorm": _batchnorm, "dropout": _dropout,
    "depthwise_conv2d": _depthwise_conv2d, "global_avgpool": _global_avgpool,
    "identity": _identity, "add": _add, "concat": _concat,
    **dict.fromkeys(ACTIVATIONS, _activation),
}


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy of the logits."""
    return F.cross_entropy(logits, labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of argmax == label, float32."""
    return (logits.argmax(1) == labels).float().mean()
