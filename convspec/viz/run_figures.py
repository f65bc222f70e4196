"""Write a run's figures as PNG files: every figure of the tutorial, from a run directory.

Used by ``convspec plot``, ``convspec train --plots`` and the report. Each kind reads only what
it needs from the run (``RunSource``, whose parts load when first asked for): ``curves`` the
metrics; ``filters`` the weights (a safetensors file, no framework); ``images`` and ``input``
the test data (and the model for predictions); ``errors``, ``confusion`` and ``activations``
the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError
from .activations import block_chains, plot_conv_layer
from .confusion import plot_confusion_matrix
from .curves import plot_training_curves
from .filters import plot_conv_weights, tutorial_input_channels
from .images import plot_example_errors, plot_image, plot_images

KINDS = ("images", "errors", "confusion", "filters", "input", "activations", "curves")
"""Every kind, in the tutorial's order (the graph is drawn by ``convspec.viz.graph``)."""
TUTORIAL_IMAGES = (0, 13)  # the test images the tutorial shows its layer outputs for
GRID = 9  # the tutorial's first figure: the first 9 test images


class RunSource(Protocol):
    """What the figures read of a run; each part is loaded when first used."""

    run_dir: Path
    spec: Any
    class_names: Sequence[str]  # one per output

    @property
    def weights(self) -> Mapping[str, np.ndarray]: ...  # canonical

    @property
    def data(self) -> Any: ...  # a convspec.data.Dataset

    @property
    def model(self) -> Any: ...  # a compiled model (predict, activations)

    @property
    def evaluation(self) -> Any: ...  # the test set's convspec.evaluation.Evaluation


@dataclass(frozen=True)
class RunFigure:
    """A written figure: its file, the kind that made it and a caption for people."""

    path: Path
    kind: str
    caption: str


def conv_layers(spec: Any) -> list[str]:
    return [layer.name for layer in spec.layers if layer.kind == "conv2d"]


def default_images(test_size: int) -> list[int]:
    """The tutorial's test images 0 and 13, those the test set has."""
    return [i for i in TUTORIAL_IMAGES if i < test_size]


def write_run_plots(run: RunSource, what: Iterable[str] = KINDS, *,
                    images: Sequence[int] | None = None, layers: Sequence[str] | None = None,
                    input_channels: Sequence[int] | None = None) -> list[RunFigure]:
    """Render the requested kinds of figure into ``run.run_dir``; returns what was written.

    ``images``: the test images of ``input`` and ``activations`` (default: 0 and 13);
    ``layers``: conv layers for ``filters`` and any spatial layers for ``activations``
    (default: every conv layer's filters, and the output of every conv block, i.e. after
    its pooling and activation: ``activations.block_outputs``); ``input_channels``: those of
    each filter figure (default: the tutorial's 0 and 1 where a layer has them).
    UsageError for an unknown kind, layer, image or channel.
    """
    spec, names = run.spec, list(run.class_names)
    kinds = list(dict.fromkeys(what))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"unknown plot {unknown[0]!r}; choose from {', '.join(KINDS)} or all")
    layer_names = [row.name for row in spec.table.rows]
    missing = [name for name in layers or () if name not in layer_names]
    if missing:
        raise UsageError(f"--layer {', '.join(missing)}: no such layer in {spec.name}; layers: "
                         f"{', '.join(layer_names)}")
    written: list[RunFigure] = []

    def out(name: str, kind: str, caption: str) -> Path:
        written.append(RunFigure(run.run_dir / name, kind, caption))
        return written[-1].path

    for kind in kinds:
        if kind == "curves":
            plot_training_curves(run.run_dir, path=out(
                "curves.png", kind, "Loss and accuracy during training (training: means over "
                "each logging window; validation: each validation)"))
        elif kind == "filters":
            _filters(run, layers, input_channels, out)
        elif kind in ("images", "input", "activations"):
            _test_images(run, kind, images, layers, names, out)
        elif kind == "errors":
            ev = run.evaluation
            plot_example_errors(shown(run.data.test.images), ev.cls_true, ev.cls_pred,
                                class_names=names, path=out(
                                    "errors.png", kind, "Misclassified test images (the "
                                    "first 9): true and predicted class"))
        else:
            plot_confusion_matrix(run.evaluation.confusion, class_names=names, path=out(
                "confusion.png", kind, "Confusion matrix of the test set (rows: true class, "
                "columns: predicted class)"))
    return written


def _filters(run: RunSource, layers: Sequence[str] | None, channels: Sequence[int] | None,
             out: Any) -> None:
    convs = conv_layers(run.spec)
    chosen = [name for name in layers if name in convs] if layers else convs
    if layers and not chosen:
        raise UsageError(f"--layer {', '.join(layers)}: filters are drawn for conv layers; "
                         f"those of {run.spec.name}: {', '.join(convs) or 'none'}")
    weights = run.weights
    for layer in chosen:
        depth = weights[f"{layer}/kernel"].shape[2]
        wanted = list(channels) if channels else tutorial_input_channels(weights, layer)
        bad = [c for c in wanted if not 0 <= c < depth]
        if bad:
            raise UsageError(f"--input-channel {bad[0]}: {layer} has input channels "
                             f"0..{depth - 1}")
        for c in wanted:
            plot_conv_weights(weights, layer, input_channel=c, path=out(
                f"filters_{layer}_in{c}.png", "filters",
                f"Filters of {layer}, input channel {c} of {depth} (red positive, blue "
                f"negative, white zero)"))


def _test_images(run: RunSource, kind: str, images: Sequence[int] | None,
                 layers: Sequence[str] | None, names: list[str], out: Any) -> None:
    test = run.data.test
    shown_images = shown(test.images)
    if kind == "images":
        count = min(GRID, len(test))
        predicted = (run.model.predict(test.images[:count]).argmax(axis=1)
                     if _has_weights(run) else None)
        plot_images(shown_images[:count], test.labels[:count], predicted, class_names=names,
                    title=f"The first {count} test images", path=out(
                        "images.png", kind, f"The first {count} test images: true class"
                        + (" and the network's prediction" if predicted is not None else "")))
        return
    indices = list(images) if images else default_images(len(test))
    bad = [i for i in indices if not 0 <= i < len(test)]
    if bad:
        raise UsageError(f"--image {bad[0]}: the test set has images 0..{len(test) - 1}")
    chains = {chain[-1]: chain for chain in block_chains(run.spec).values()}
    chosen = list(layers) if layers else list(chains)
    for i in indices:
        label = names[int(test.labels[i])]
        if kind == "input":
            plot_image(shown_images[i], title=f"Test image {i}, true class: {label}",
                       path=out(f"input_image{i}.png", kind,
                                f"Test image {i} (true class {label})"))
            continue
        for layer in chosen:
            what = " \u2192 ".join(chains.get(layer, [layer]))
            plot_conv_layer(run.model, layer, test.images[i], name=what,
                            note=f"test image {i}, true class: {label}",
                            path=out(f"activations_{layer}_image{i}.png", kind,
                                     f"Output of {what} for test image {i} (true class "
                                     f"{label}), one panel per channel, the input on the "
                                     f"left"))


def _has_weights(run: RunSource) -> bool:
    """Whether the run has weights to predict with (its ``has_weights``; assumed when the
    source does not say)."""
    return bool(getattr(run, "has_weights", True))


def shown(images: Any) -> Any:
    """Images as a person sees them: scaled to [0, 1] but not normalised (an ImageArray of
    normalised data would show shifted colours)."""
    preprocessing = getattr(images, "preprocessing", None)
    if preprocessing is None or preprocessing.mean is None:
        return images
    return images.with_preprocessing(preprocessing.without_normalization())
