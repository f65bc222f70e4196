"""Layer outputs: every channel of one layer's output for one input image, the image beside.

``plot_layer_output`` draws NumPy arrays (a layer's (H, W, C) output and the input image);
``plot_conv_layer`` first asks a model (anything with ``activations(x)``, e.g. a compiled
convspec model) for the outputs. ``block_outputs`` picks what the tutorial draws for each
convolution: the output of the pooling and activation layers that follow it (for the tutorial
network, conv -> max-pool -> ReLU: 14x14 after conv1, 7x7 after conv2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from ..errors import ConvspecError
from .figure import PathArg, finish, new_figure
from .images import as_image, as_images, show_image

# kinds that keep a convolution's feature maps what they are: resampled, activated,
# normalised or dropped, one input each (the end of a tutorial "conv layer")
_FOLLOWERS = frozenset({"maxpool", "avgpool", "relu", "relu6", "tanh", "sigmoid", "leaky_relu",
                        "batchnorm", "dropout", "identity"})


class ActivationModel(Protocol):
    """Anything that can report every layer's output for an NHWC float32 batch."""

    def activations(self, x: np.ndarray) -> Mapping[str, np.ndarray]: ...


def block_chains(spec: Any) -> dict[str, list[str]]:
    """Each conv2d / depthwise_conv2d layer -> it and the chain of layers that follow it
    (pooling, activations, batch norm, dropout, each the only consumer of the one before).
    ``{"conv1": ["conv1", "pool1", "relu1"], ...}`` for the tutorial network."""
    rows = spec.table.rows
    consumers: dict[str, int] = {}
    for row in rows:
        for name in row.inputs:
            consumers[name] = consumers.get(name, 0) + 1
    out = {}
    for i, (layer, row) in enumerate(zip(spec.layers, rows, strict=True)):
        if layer.kind not in ("conv2d", "depthwise_conv2d"):
            continue
        chain = [row.name]
        for nxt_layer, nxt in zip(spec.layers[i + 1:], rows[i + 1:], strict=True):
            if (nxt_layer.kind not in _FOLLOWERS or nxt.inputs != (chain[-1],)
                    or consumers.get(chain[-1], 0) != 1):
                break
            chain.append(nxt.name)
        out[row.name] = chain
    return out


def block_outputs(spec: Any) -> dict[str, str]:
    """Each convolution -> the last layer of its chain (``block_chains``): what the tutorial
    draws as a conv layer's output. ``{"conv1": "relu1", "conv2": "relu2"}`` for the tutorial
    network (14x14 and 7x7, after max-pool and ReLU)."""
    return {conv: chain[-1] for conv, chain in block_chains(spec).items()}


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


def plot_layer_output(
    output: ArrayLike,
    *,
    layer: str,
    image: ArrayLike | None = None,
    note: str | None = None,
    title: str | None = None,
    path: PathArg = None,
    show: bool = False,
) -> Figure:
    """Every channel of one layer's (H, W, C) ``output`` in a square grid (``binary``, each
    channel on its own scale, as the tutorial draws them), the input ``image`` on the left
    when given. ``title`` defaults to ``<layer>: C channels of HxW``, with ``note`` (e.g.
    which image) on a second line."""
    out = np.asarray(output)
    if out.ndim != 3:
        raise ConvspecError(f"A layer output to plot is (H, W, C); got shape {out.shape}.")
    h, w, channels = out.shape
    n = math.ceil(math.sqrt(channels))
    left = 0.0 if image is None else 2.6
    fig = new_figure((left + n * 1.1 + 0.4, max(n * 1.1 + 0.7, 3.2)), show)
    maps = fig
    if image is not None:
        beside, maps = fig.subfigures(1, 2, width_ratios=[left, n * 1.1 + 0.4])
        ax = beside.subplots()
        show_image(ax, as_image(image))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("input", fontsize=10)
    axes = maps.subplots(n, n, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < channels:
            ax.imshow(out[:, :, i], cmap="binary", interpolation="nearest")
        else:
            ax.set_visible(False)
    title = title or f"{layer}: {channels} channels of {h}x{w}"
    fig.suptitle(title if note is None else f"{title}\n{note}")
    return finish(fig, path, show)


def plot_conv_layer(
    model: ActivationModel,
    layer: str,
    image: ArrayLike,
    *,
    name: str | None = None,
    note: str | None = None,
    title: str | None = None,
    show_input: bool = True,
    path: PathArg = None,
    show: bool = False,
) -> Figure:
    """Every output channel of ``layer`` (any layer with an NHWC output) for one input image:
    what each filter responds to, the image beside it unless ``show_input`` is false.
    ``name`` (default ``layer``) and ``note`` make the title (``plot_layer_output``)."""
    if not callable(getattr(model, "activations", None)):
        raise ConvspecError(
            f"{type(model).__name__} has no activations(x) method, so its layer outputs "
            "cannot be plotted; pass a compiled convspec model."
        )
    batch = _as_batch(image)
    out = _spatial_output(model.activations(batch), layer)[0]
    return plot_layer_output(out, layer=name or layer, image=batch[0] if show_input else None,
                             note=note, title=title, path=path, show=show)
