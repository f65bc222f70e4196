"""The confusion matrix figure (the matrix itself is ``convspec.metrics.confusion_matrix``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from ..errors import ConvspecError
from .figure import PathArg, finish, new_figure

_MAX_ANNOTATED_CLASSES = 30  # beyond this, per-cell counts become unreadable


def _row_normalised(cm: np.ndarray) -> np.ndarray:
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros(cm.shape, dtype=float), where=sums != 0)


def _annotate_cells(ax: Axes, values: np.ndarray, image: Any, fmt: str) -> None:
    """Write each cell's value in black or white, whichever contrasts with its colour."""
    fontsize = 10 if len(values) <= 10 else 7
    for (r, c), v in np.ndenumerate(values):
        red, green, blue, _ = image.cmap(image.norm(v))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        ax.text(
            c,
            r,
            format(v, fmt),
            ha="center",
            va="center",
            fontsize=fontsize,
            color="white" if dark else "black",
        )


def plot_confusion_matrix(
    cm: ArrayLike,
    *,
    class_names: Sequence[str] | None = None,
    normalize: bool = False,
    path: PathArg = None,
    show: bool = False,
) -> Figure:
    """Confusion matrix image (optionally row-normalised) with per-cell counts and colorbar."""
    mat = np.asarray(cm)
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or mat.size == 0:
        raise ConvspecError(f"A confusion matrix must be square (K, K); got shape {mat.shape}.")
    k = len(mat)
    if class_names is not None and len(class_names) != k:
        raise ConvspecError(f"class_names has {len(class_names)} entries for {k} classes.")
    values = _row_normalised(mat) if normalize else mat
    side = min(max(4.5, 0.55 * k + 2.0), 20.0)
    fig = new_figure((side + 1.0, side), show)
    ax = fig.add_subplot()
    image = ax.imshow(
        values, cmap="Blues", interpolation="nearest", vmin=0, vmax=1 if normalize else None
    )
    fig.colorbar(image, ax=ax, label="fraction of true class" if normalize else "count")
    labels = [str(c) for c in (range(k) if class_names is None else class_names)]
    ax.set_yticks(range(k), labels)
    if class_names is None:
        ax.set_xticks(range(k), labels)
    else:  # names are long: slant them so neighbours do not collide
        ax.set_xticks(range(k), labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title("Confusion matrix" + (" (row-normalised)" if normalize else ""))
    if k <= _MAX_ANNOTATED_CLASSES:
        is_int = np.issubdtype(values.dtype, np.integer)
        _annotate_cells(ax, values, image, "d" if is_int else ".2f")
    return finish(fig, path, show)
