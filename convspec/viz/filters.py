"""Convolution filters: one input channel of every kernel of a conv layer, white at zero."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..errors import ConvspecError
from .figure import PathArg, finish, grid, new_figure


def _conv_layers(weights: Mapping[str, np.ndarray]) -> list[str]:
    return sorted(
        key.removesuffix("/kernel")
        for key, value in weights.items()
        if key.endswith("/kernel") and np.ndim(value) == 4
    )


def _conv_kernel(weights: Mapping[str, np.ndarray], layer: str) -> np.ndarray:
    """The HWIO kernel of ``layer``, or an error that lists the conv layers there are."""
    kernel = weights.get(f"{layer}/kernel")
    if kernel is None or np.ndim(kernel) != 4:
        found = ", ".join(_conv_layers(weights)) or "none"
        why = "is not a conv layer" if kernel is not None else "has no kernel in these weights"
        raise ConvspecError(
            f"Layer {layer!r} {why} (expected a 4-D HWIO array at key '{layer}/kernel'). "
            f"Conv layers in these weights: {found}."
        )
    return np.asarray(kernel)


def plot_conv_weights(
    weights: Mapping[str, np.ndarray],
    layer: str,
    *,
    input_channel: int = 0,
    path: PathArg = None,
    show: bool = False,
) -> Figure:
    """One input channel of every filter of a conv layer (the tutorial's
    ``plot_conv_weights``), on one colour scale with a colorbar.

    The scale is symmetric around zero (``seismic``: white is 0, red positive, blue negative)
    and spans the largest magnitude in the whole kernel, every input channel included, so the
    figures of two input channels, and all filters in one figure, compare directly.
    ``weights`` are canonical (``layer/kernel`` HWIO). Raises ConvspecError for a layer
    without a 4-D kernel or an input channel out of range.
    """
    kernel = _conv_kernel(weights, layer)
    _, _, in_channels, out_channels = kernel.shape
    if not 0 <= input_channel < in_channels:
        raise ConvspecError(
            f"input_channel {input_channel} is out of range for {layer!r}, which has "
            f"{in_channels} input channel(s) (valid 0..{in_channels - 1})."
        )
    limit = float(np.abs(kernel).max()) or 1.0
    n = math.ceil(math.sqrt(out_channels))
    fig = new_figure((n * 1.2 + 1.4, n * 1.2 + 0.5), show)
    axes = grid(fig, out_channels, square=True)
    for i, ax in enumerate(axes):
        image = ax.imshow(
            kernel[:, :, input_channel, i],
            vmin=-limit,
            vmax=limit,
            cmap="seismic",
            interpolation="nearest",
        )
    bar = fig.colorbar(image, ax=fig.axes, shrink=0.8)
    bar.set_label("weight")
    fig.suptitle(f"{layer}: {out_channels} filters, input channel {input_channel} of "
                 f"{in_channels}")
    return finish(fig, path, show)


def tutorial_input_channels(weights: Mapping[str, np.ndarray], layer: str) -> list[int]:
    """The input channels the tutorial draws: 0, and 1 when the layer has it (conv2)."""
    return list(range(min(2, _conv_kernel(weights, layer).shape[2])))
