"""Write a run's figures as PNG files: the glue between a run directory and the plots.

Used by ``convspec plot``, ``convspec train --plots`` and the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .activations import plot_conv_layer
from .confusion import plot_confusion_matrix
from .curves import plot_training_curves
from .filters import plot_conv_weights
from .images import plot_example_errors

KINDS = ("curves", "errors", "confusion", "filters", "activations")


def conv_layers(spec: Any) -> list[str]:
    return [layer.name for layer in spec.layers if layer.kind == "conv2d"]


def write_run_plots(run_dir: Path, *, data: Any, model: Any, evaluation: Any,
                    what: Iterable[str] = KINDS, image: int = 0,
                    layers: list[str] | None = None,
                    class_names: Sequence[str] | None = None) -> list[Path]:
    """Render the requested kinds of figure into ``run_dir``; returns the files written.
    ``class_names`` (one per output; default: the data's, padded with indices) label the
    confusion matrix and the example errors."""
    run_dir = Path(run_dir)
    spec = model.spec
    names = list(class_names or data.class_names)[:spec.classes]
    names += [str(i) for i in range(len(names), spec.classes)]
    layers = layers or conv_layers(spec)
    unknown = [name for name in layers if name not in conv_layers(spec)]
    if unknown:
        raise UsageError(f"--layer {', '.join(unknown)}: not a conv layer of {spec.name}; "
                         f"conv layers: {', '.join(conv_layers(spec)) or 'none'}")
    if not 0 <= image < len(data.test):
        raise UsageError(f"--image {image}: the test set has images 0..{len(data.test) - 1}")
    written: list[Path] = []

    def out(name: str) -> Path:
        written.append(run_dir / name)
        return written[-1]

    for kind in what:
        if kind == "curves":
            plot_training_curves(run_dir, path=out("curves.png"))
        elif kind == "errors":
            plot_example_errors(_shown(data.test.images), evaluation.cls_true,
                                evaluation.cls_pred, class_names=names, path=out("errors.png"))
        elif kind == "confusion":
            plot_confusion_matrix(evaluation.confusion, class_names=names,
                                      path=out("confusion.png"))
        elif kind == "filters":
            weights = model.get_weights()
            for layer in layers:
                plot_conv_weights(weights, layer, path=out(f"filters_{layer}.png"))
        elif kind == "activations":
            for layer in layers:
                plot_conv_layer(model, layer, data.test.images[image],
                                    path=out(f"activations_{layer}_image{image}.png"))
        else:
            raise UsageError(f"unknown plot {kind!r}; choose from {', '.join(KINDS)} or all")
    return written


def _shown(images: Any) -> Any:
    """Images as a person sees them: scaled to [0, 1] but not normalised (an ImageArray of
    normalised data would show shifted colours)."""
    preprocessing = getattr(images, "preprocessing", None)
    if preprocessing is None or preprocessing.mean is None:
        return images
    return images.with_preprocessing(preprocessing.without_normalization())
