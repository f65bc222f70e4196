"""Convolution outputs: every channel of a layer's output for one input image."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from ..errors import ConvspecError
from .figure import PathArg, finish, grid, new_figure
from .images import as_images


class ActivationModel(Protocol):
    """Anything that can report every layer's output for an NHWC float32 batch."""

    def activations(self, x: np.ndarray) -> Mapping[str, np.ndarray]: ...


def _as_batch(image: ArrayLike) -> np.ndarray:
    """One image as a float32 NHWC batch of 1; uint8 pixels are scaled to [0, 1]."""
    arr = np.asarray(image)
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    if arr.ndim == 1:
        arr = as_images(arr[np.newaxis])[0]  # flat square grayscale -> (H, W)
    if arr.ndim == 2:
        arr = arr[..., np.newaxis]
    if arr.ndim != 3:
        raise ConvspecError(
            f"Image has shape {arr.shape}; plot_conv_layer takes one image, (H, W, C), (H, W) "
            "or flat square grayscale, not a batch."
        )
    return (arr.astype(np.float32) / scale)[np.newaxis]


def _spatial_output(acts: Mapping[str, np.ndarray], layer: str) -> np.ndarray:
    """The NHWC output of ``layer``, or an error listing the spatial layers there are."""
    out = acts.get(layer)
    if out is None or np.ndim(out) != 4:
        spatial = ", ".join(name for name, a in acts.items() if np.ndim(a) == 4) or "none"
        why = f"has output shape {np.shape(out)}, not NHWC" if out is not None else "is unknown"
        raise ConvspecError(
            f"Layer {layer!r} {why}, so it has no channels to plot. "
            f"Spatial layers of this model: {spatial}."
        )
    return np.asarray(out)


def plot_conv_layer(
    model: ActivationModel,
    layer: str,
    image: ArrayLike,
    *,
    path: PathArg = None,
    show: bool = False,
) -> Figure:
    """Every output channel of ``layer`` for one input image: what each filter responds to."""
    if not callable(getattr(model, "activations", None)):
        raise ConvspecError(
            f"{type(model).__name__} has no activations(x) method, so its layer outputs "
            "cannot be plotted; pass a compiled convspec model."
        )
    out = _spatial_output(model.activations(_as_batch(image)), layer)[0]
    channels = out.shape[-1]
    n = math.ceil(math.sqrt(channels))
    fig = new_figure((n * 1.3 + 0.4, n * 1.3 + 0.5), show)
    for i, ax in enumerate(grid(fig, channels, square=True)):
        ax.imshow(out[:, :, i], cmap="binary", interpolation="nearest")
    fig.suptitle(f"{layer} output ({channels} channels)")
    return finish(fig, path, show)
