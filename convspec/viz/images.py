"""Images and errors: grids of input images labelled with true (and predicted) classes.

The look follows the TensorFlow MNIST CNN tutorial: ``binary`` images without ticks, wrong
predictions in red.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from ..errors import ConvspecError
from ..metrics import as_class_indices
from .figure import PathArg, finish, grid, grid_shape, new_figure


def as_images(images: ArrayLike) -> np.ndarray:
    """Normalise a batch to (N, H, W) grayscale or (N, H, W, 3|4) colour for ``imshow``."""
    arr = np.asarray(images)
    if arr.ndim == 2:  # (N, H*W): flattened square grayscale images
        side = math.isqrt(arr.shape[1])
        if side * side != arr.shape[1]:
            raise ConvspecError(
                f"Flat images have {arr.shape[1]} pixels, which is not a square number, so "
                "their height and width are unknown; pass them as (N, H, W) or (N, H, W, C)."
            )
        arr = arr.reshape(len(arr), side, side)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (3, 4)):
        raise ConvspecError(
            f"Images have shape {arr.shape}; expected (N, H, W), (N, H, W, C) with C in "
            "1, 3 or 4, or (N, H*W) for square grayscale images."
        )
    if len(arr) == 0:
        raise ConvspecError("There are no images to plot: the image batch is empty.")
    return _displayable(arr)


def as_image(image: ArrayLike) -> np.ndarray:
    """One image, (H, W), (H, W, C) or flat, as ``as_images`` would show it."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4):
        raise ConvspecError(
            f"Image has shape {arr.shape}; expected (H, W), (H, W, C) with C in 1, 3 or 4, "
            "or a flat square grayscale image. Pass one image, not a batch."
        )
    if arr.ndim not in (1, 2, 3):
        raise ConvspecError(
            f"Image has shape {arr.shape}; expected one image: (H, W), (H, W, C) or flat."
        )
    return as_images(arr[np.newaxis])[0]


def _displayable(arr: np.ndarray) -> np.ndarray:
    """Colour images out of imshow's range are min-max scaled so they are not clipped."""
    if arr.ndim == 3 or arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        arr = (arr - lo) / (hi - lo or 1.0)
    return arr


def class_name(c: int, class_names: Sequence[str] | None) -> str:
    if class_names is None:
        return str(c)
    if not 0 <= c < len(class_names):
        raise ConvspecError(
            f"Class {c} has no name: class_names has {len(class_names)} entries "
            f"(valid classes 0..{len(class_names) - 1})."
        )
    return str(class_names[c])


def _image_label(true: int, pred: int | None, class_names: Sequence[str] | None) -> str:
    label = f"True: {class_name(true, class_names)}"
    if pred is not None:
        label += f", Pred: {class_name(pred, class_names)}"
    return label


def show_image(ax: Axes, img: np.ndarray) -> None:
    if img.ndim == 2:
        ax.imshow(img, cmap="binary", interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")


def plot_images(
    images: ArrayLike,
    cls_true: ArrayLike,
    cls_pred: ArrayLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
    ncols: int | None = None,
    title: str | None = None,
    path: PathArg = None,
    show: bool = False,
) -> Figure:
    """Grid of images labelled "True: t" or "True: t, Pred: p"; wrong predictions in red."""
    imgs = as_images(images)
    n = len(imgs)
    true = as_class_indices(cls_true, "cls_true", n)
    pred = None if cls_pred is None else as_class_indices(cls_pred, "cls_pred", n)
    if ncols is not None and ncols < 1:
        raise ConvspecError(f"ncols must be at least 1; got {ncols}.")
    labels = [
        _image_label(int(t), None if pred is None else int(p), class_names)
        for t, p in zip(true, true if pred is None else pred, strict=True)
    ]
    nrows, cols = grid_shape(n, ncols)
    cell_w = max(1.6, 0.075 * max(map(len, labels)) + 0.3)  # wide enough for the xlabel
    height = nrows * (1.6 if n > 1 else 2.2) + (0.4 if title else 0.0)
    fig = new_figure((max(cols * cell_w, 2.0), height), show)
    for i, ax in enumerate(grid(fig, n, cols)):
        show_image(ax, imgs[i])
        wrong = pred is not None and pred[i] != true[i]
        ax.set_xlabel(labels[i], fontsize=9, color="tab:red" if wrong else "black")
    if title:
        fig.suptitle(title)
    return finish(fig, path, show)


def plot_example_errors(
    images: ArrayLike,
    cls_true: ArrayLike,
    cls_pred: ArrayLike,
    *,
    max_images: int = 9,
    class_names: Sequence[str] | None = None,
    path: PathArg = None,
    show: bool = False,
) -> Figure:
    """The first misclassified images, to see what kind of digits the network gets wrong."""
    imgs = as_images(images)
    true = as_class_indices(cls_true, "cls_true", len(imgs))
    pred = as_class_indices(cls_pred, "cls_pred", len(imgs))
    if max_images < 1:
        raise ConvspecError(f"max_images must be at least 1; got {max_images}.")
    wrong = np.flatnonzero(true != pred)
    if len(wrong) == 0:
        fig = new_figure((4.0, 2.0), show)
        fig.text(
            0.5,
            0.5,
            f"No misclassified images\n(all {len(imgs)} correct)",
            ha="center",
            va="center",
            fontsize=14,
        )
        return finish(fig, path, show)
    idx = wrong[:max_images]
    title = f"First {len(idx)} of {len(wrong):,} misclassified images"
    return plot_images(
        imgs[idx], true[idx], pred[idx], class_names=class_names, title=title, path=path, show=show
    )


def plot_image(
    image: ArrayLike, *, title: str | None = None, path: PathArg = None, show: bool = False
) -> Figure:
    """One image, large, as the tutorial shows a single input."""
    img = as_image(image)
    fig = new_figure((3.0, 3.0 + 0.3 * bool(title)), show)
    (ax,) = grid(fig, 1)
    show_image(ax, img)
    if title:
        ax.set_title(title)
    return finish(fig, path, show)
