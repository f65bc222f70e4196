"""Framework-free plots for convspec: images, errors, confusion matrices, filters, training.

Everything here needs only numpy and matplotlib, so the same plots work for every backend
(models are reached through a duck-typed ``activations()`` method, weights through convspec's
canonical ``name -> ndarray`` dict). Figures are built with ``matplotlib.figure.Figure`` and an
Agg canvas rather than pyplot, so plotting is headless-safe, never pops a window, and leaves no
global pyplot state behind; pyplot is imported only when ``show=True`` asks for a window.
The look follows the TensorFlow MNIST CNN tutorial: ``binary`` images without ticks.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from convspec.errors import ConvspecError

__all__ = [
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_conv_layer",
    "plot_conv_weights",
    "plot_example_errors",
    "plot_image",
    "plot_images",
    "plot_training_curves",
]

DPI = 100
PathArg = str | os.PathLike[str] | None
_MAX_ANNOTATED_CLASSES = 30  # beyond this, per-cell counts become unreadable


class ActivationModel(Protocol):
    """Anything that can report every layer's output for an NHWC float32 batch."""

    def activations(self, x: np.ndarray) -> Mapping[str, np.ndarray]: ...


# --------------------------------------------------------------------------- figure plumbing


def _new_figure(figsize: tuple[float, float], show: bool) -> Figure:
    """A constrained-layout figure; pyplot-managed only when it must be shown."""
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, dpi=DPI, layout="constrained")
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig: Figure, path: PathArg, show: bool) -> Figure:
    """Save to ``path`` as PNG (making parent dirs) and/or display, then return the figure."""
    if path is not None:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=DPI, format="png")
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig


def _grid_shape(n: int, ncols: int | None = None) -> tuple[int, int]:
    """(rows, cols) for ``n`` cells, ceil(sqrt(n)) columns unless given."""
    ncols = ncols or math.ceil(math.sqrt(n))
    return math.ceil(n / ncols), ncols


def _grid(fig: Figure, n: int, ncols: int | None = None, *, square: bool = False) -> list[Axes]:
    """``n`` tick-less axes in a grid (k x k if ``square``, as the tutorial draws filters);
    the spare cells are hidden."""
    shape = (math.ceil(math.sqrt(n)),) * 2 if square else _grid_shape(n, ncols)
    axes = list(fig.subplots(*shape, squeeze=False).ravel())
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]


# --------------------------------------------------------------------------- input checks


def _as_images(images: ArrayLike) -> np.ndarray:
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


def _as_image(image: ArrayLike) -> np.ndarray:
    """One image, (H, W), (H, W, C) or flat, as ``_as_images`` would show it."""
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
    return _as_images(arr[np.newaxis])[0]


def _displayable(arr: np.ndarray) -> np.ndarray:
    """Colour images out of imshow's range are min-max scaled so they are not clipped."""
    if arr.ndim == 3 or arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        arr = (arr - lo) / (hi - lo or 1.0)
    return arr


def _as_classes(cls: ArrayLike, name: str, n: int | None = None) -> np.ndarray:
    """Class indices as int64 (one-hot rows are argmax-ed), checked to match ``n`` images."""
    arr = np.asarray(cls)
    if arr.ndim == 2:
        arr = arr.argmax(axis=1)
    arr = arr.reshape(-1)
    if n is not None and len(arr) != n:
        raise ConvspecError(f"{name} has {len(arr)} labels but there are {n} images.")
    integral = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0)
    )
    if not integral:
        raise ConvspecError(f"{name} must hold integer class indices; got {arr.dtype} values.")
    return arr.astype(np.int64)


def _class_name(c: int, class_names: Sequence[str] | None) -> str:
    if class_names is None:
        return str(c)
    if not 0 <= c < len(class_names):
        raise ConvspecError(
            f"Class {c} has no name: class_names has {len(class_names)} entries "
            f"(valid classes 0..{len(class_names) - 1})."
        )
    return str(class_names[c])


# --------------------------------------------------------------------------- image grids


def _image_label(true: int, pred: int | None, class_names: Sequence[str] | None) -> str:
    label = f"True: {_class_name(true, class_names)}"
    if pred is not None:
        label += f", Pred: {_class_name(pred, class_names)}"
    return label


def _show_image(ax: Axes, img: np.ndarray) -> None:
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
    imgs = _as_images(images)
    n = len(imgs)
    true = _as_classes(cls_true, "cls_true", n)
    pred = None if cls_pred is None else _as_classes(cls_pred, "cls_pred", n)
    if ncols is not None and ncols < 1:
        raise ConvspecError(f"ncols must be at least 1; got {ncols}.")
    labels = [
        _image_label(int(t), None if pred is None else int(p), class_names)
        for t, p in zip(true, true if pred is None else pred, strict=True)
    ]
    nrows, cols = _grid_shape(n, ncols)
    cell_w = max(1.6, 0.075 * max(map(len, labels)) + 0.3)  # wide enough for the xlabel
    height = nrows * (1.6 if n > 1 else 2.2) + (0.4 if title else 0.0)
    fig = _new_figure((max(cols * cell_w, 2.0), height), show)
    for i, ax in enumerate(_grid(fig, n, cols)):
        _show_image(ax, imgs[i])
        wrong = pred is not None and pred[i] != true[i]
        ax.set_xlabel(labels[i], fontsize=9, color="tab:red" if wrong else "black")
    if title:
        fig.suptitle(title)
    return _finish(fig, path, show)


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
    imgs = _as_images(images)
    true = _as_classes(cls_true, "cls_true", len(imgs))
    pred = _as_classes(cls_pred, "cls_pred", len(imgs))
    if max_images < 1:
        raise ConvspecError(f"max_images must be at least 1; got {max_images}.")
    wrong = np.flatnonzero(true != pred)
    if len(wrong) == 0:
        fig = _new_figure((4.0, 2.0), show)
        fig.text(
            0.5,
            0.5,
            f"No misclassified images\n(all {len(imgs)} correct)",
            ha="center",
            va="center",
            fontsize=14,
        )
        return _finish(fig, path, show)
    idx = wrong[:max_images]
    title = f"First {len(idx)} of {len(wrong)} misclassified images"
    return plot_images(
        imgs[idx], true[idx], pred[idx], class_names=class_names, title=title, path=path, show=show
    )


def plot_image(
    image: ArrayLike, *, title: str | None = None, path: PathArg = None, show: bool = False
) -> Figure:
    """One image, large, as the tutorial shows a single input."""
    img = _as_image(image)
    fig = _new_figure((3.0, 3.0 + 0.3 * bool(title)), show)
    (ax,) = _grid(fig, 1)
    _show_image(ax, img)
    if title:
        ax.set_title(title)
    return _finish(fig, path, show)


# --------------------------------------------------------------------------- confusion matrix


def confusion_matrix(cls_true: ArrayLike, cls_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts with rows = true class, cols = predicted class (int64, numpy only)."""
    if num_classes < 1:
        raise ConvspecError(f"num_classes must be at least 1; got {num_classes}.")
    true, pred = _as_classes(cls_true, "cls_true"), _as_classes(cls_pred, "cls_pred")
    if len(true) != len(pred):
        raise ConvspecError(
            f"cls_true has {len(true)} labels but cls_pred has {len(pred)}; they must pair up."
        )
    for name, arr in (("cls_true", true), ("cls_pred", pred)):
        bad = arr[(arr < 0) | (arr >= num_classes)]
        if bad.size:
            raise ConvspecError(
                f"{name} contains class {int(bad[0])}, outside 0..{num_classes - 1} "
                f"for num_classes={num_classes}."
            )
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


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
    fig = _new_figure((side + 1.0, side), show)
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
    return _finish(fig, path, show)


# --------------------------------------------------------------------------- network internals


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
    """One input channel of every filter of a conv layer, all on one colour scale.

    A shared vmin/vmax (the whole kernel's min and max) keeps filters comparable: red is
    positive, blue negative, whatever filter they are in.
    """
    kernel = _conv_kernel(weights, layer)
    _, _, in_channels, out_channels = kernel.shape
    if not 0 <= input_channel < in_channels:
        raise ConvspecError(
            f"input_channel {input_channel} is out of range for {layer!r}, which has "
            f"{in_channels} input channel(s) (valid 0..{in_channels - 1})."
        )
    vmin, vmax = float(kernel.min()), float(kernel.max())
    n = math.ceil(math.sqrt(out_channels))
    fig = _new_figure((n * 1.2 + 1.4, n * 1.2 + 0.5), show)
    axes = _grid(fig, out_channels, square=True)
    for i, ax in enumerate(axes):
        image = ax.imshow(
            kernel[:, :, input_channel, i],
            vmin=vmin,
            vmax=vmax,
            cmap="seismic",
            interpolation="nearest",
        )
    fig.colorbar(image, ax=fig.axes, shrink=0.8)
    fig.suptitle(f"{layer} filters, input channel {input_channel}")
    return _finish(fig, path, show)


def _as_batch(image: ArrayLike) -> np.ndarray:
    """One image as a float32 NHWC batch of 1; uint8 pixels are scaled to [0, 1]."""
    arr = np.asarray(image)
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    if arr.ndim == 1:
        arr = _as_images(arr[np.newaxis])[0]  # flat square grayscale -> (H, W)
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
    fig = _new_figure((n * 1.3 + 0.4, n * 1.3 + 0.5), show)
    for i, ax in enumerate(_grid(fig, channels, square=True)):
        ax.imshow(out[:, :, i], cmap="binary", interpolation="nearest")
    fig.suptitle(f"{layer} output ({channels} channels)")
    return _finish(fig, path, show)


# --------------------------------------------------------------------------- training curves


def _metrics_file(source: str | os.PathLike[str]) -> Path:
    path = Path(source)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise ConvspecError(
            f"No training metrics at {path}: expected a run directory containing "
            "metrics.jsonl or the path of a metrics.jsonl file."
        )
    return path


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConvspecError(
                f"{path}:{number}: not a JSON record ({exc.msg}); each line of metrics.jsonl "
                "must be one JSON object. The file may be truncated or corrupt."
            ) from exc
        if not isinstance(record, dict):
            raise ConvspecError(f"{path}:{number}: expected a JSON object, got {line.strip()!r}.")
        records.append(record)
    return records


def _load_records(source: Any) -> tuple[list[dict[str, Any]], str]:
    """Records from a run dir, a metrics.jsonl path, or a list of dicts, plus their origin."""
    if isinstance(source, str | os.PathLike):
        path = _metrics_file(source)
        return _read_metrics(path), str(path)
    if isinstance(source, Iterable) and not isinstance(source, Mapping):
        records = list(source)
        if all(isinstance(r, Mapping) for r in records):
            return records, "the given records"
    raise ConvspecError(
        f"Cannot read training metrics from a {type(source).__name__}: pass a run directory, "
        "a metrics.jsonl path, or a list of dict records."
    )


def _column(records: list[dict[str, Any]], key: str, origin: str) -> np.ndarray:
    """One metric as floats; NaN where a record lacks it (allowed only for val_accuracy)."""
    values = [r.get(key) for r in records]
    for i, v in enumerate(values):
        missing = v is None and key != "val_accuracy"
        if missing or not (v is None or isinstance(v, int | float)):
            problem = f"has no {key!r}" if missing else f"has a non-numeric {key!r}"
            raise ConvspecError(f"{origin}: record {i + 1} {problem}: {records[i]}.")
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _percent(train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracies are logged as fractions; if any exceeds 1 they were already percent."""
    both = np.concatenate([train, val])
    scale = 1.0 if np.nanmax(both, initial=0.0) > 1.0 else 100.0
    return train * scale, val * scale


def plot_training_curves(source: Any, *, path: PathArg = None, show: bool = False) -> Figure:
    """Loss and train/validation accuracy (%) against iteration, from a run's metrics.jsonl."""
    records, origin = _load_records(source)
    if not records:
        raise ConvspecError(f"{origin} holds no training records, so there is nothing to plot.")
    it = _column(records, "iteration", origin)
    loss = _column(records, "loss", origin)
    train, val = _percent(
        _column(records, "train_accuracy", origin), _column(records, "val_accuracy", origin)
    )
    fig = _new_figure((8.0, 6.0), show)
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)
    marker = "." if len(it) < 50 else None  # a lone point must still show
    ax_loss.plot(it, loss, color="tab:blue", marker=marker)
    ax_loss.set_ylabel("Loss")
    ax_loss.set_title("Training curves")
    ax_acc.plot(it, train, label="training", color="tab:orange", marker=marker)
    has_val = ~np.isnan(val)
    if has_val.any():
        ax_acc.plot(
            it[has_val],
            val[has_val],
            label="validation",
            color="tab:green",
            marker="o",
            markersize=3,
        )
    ax_acc.set_xlabel("Iteration")
    ax_acc.set_ylabel("Accuracy (%)")
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    return _finish(fig, path, show)
