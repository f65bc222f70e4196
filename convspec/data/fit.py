"""Does the data fit the spec? Checked on a probe (``convspec.data.probe``), before a run
directory is created or a framework imported, by ``convspec train`` and ``convspec validate``.

* Arrays (built-in datasets, ``.npz``, IDX) must have exactly the spec's height, width and
  channels; a pixels CSV exactly ``height x width x channels`` pixel columns.
* Image files are converted to the spec's channels, which must be 1 (grey) or 3 (RGB); each
  probed file must have the spec's height and width unless the source has ``resize``.
* The spec's ``classes`` must cover the data's classes (spare outputs are allowed, with a note).
* ``train.normalize``'s mean and std must have one value per channel.

NumPy-free.
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError
from .probe import DataSummary


def _hwc(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def check_fits(spec: Any, summary: DataSummary) -> list[str]:
    """Raise ``DataError`` (one paragraph: what the spec says, what the data has, what to
    change) unless ``spec`` can train on ``summary``'s data; return notes worth printing."""
    h, w, c = spec.input.height, spec.input.width, spec.input.channels
    want = f"spec {spec.name!r} takes {_hwc((h, w, c))} images (input: height {h}, width {w}, " \
           f"channels {c})"
    notes = list(summary.notes)
    if summary.shape is not None and summary.shape != (h, w, c):
        raise DataError(f"{want}, but {summary.description} has {_hwc(summary.shape)} images; "
                        "change the spec's input or train.dataset")
    if summary.pixels is not None and summary.pixels != h * w * c:
        raise DataError(f"{want}, i.e. {h * w * c} pixel values per row, but "
                        f"{summary.description} has {summary.pixels} pixel columns; change "
                        "the spec's input or the CSV")
    if summary.samples:
        notes += _check_files(spec, summary, want)
    _check_classes(spec, summary, notes)
    normalize = spec.train.normalize
    if normalize is not None and normalize.kind == "mean_std" and len(normalize.mean) != c:
        raise DataError(f"train.normalize has {len(normalize.mean)} mean / std value(s); the "
                        f"spec's input has {c} channel(s): give one per channel")
    return notes


def _check_files(spec: Any, summary: DataSummary, want: str) -> list[str]:
    h, w, c = spec.input.height, spec.input.width, spec.input.channels
    if c not in (1, 3):
        raise DataError(f"{want}, but image files are read as 1 (grey) or 3 (RGB) channels "
                        f"({summary.description}); set channels: 1 or 3")
    notes = []
    for sample in summary.samples:
        if (sample.height, sample.width) != (h, w):
            if summary.resize is None:
                raise DataError(
                    f"{want}, but {sample.path} is {sample.height}x{sample.width} (height x "
                    f"width); change the spec's input, or add resize: bilinear (or nearest, "
                    f"bicubic, lanczos, box, hamming) to train.dataset to resize every image")
            notes.append(f"images that are not {h}x{w} (e.g. {sample.path}: "
                         f"{sample.height}x{sample.width}) are resized ({summary.resize})")
            break
    colour = [s for s in summary.samples if s.colour]
    if c == 1 and colour:
        notes.append(f"colour images (e.g. {colour[0].path}) are converted to grey, as the "
                     "spec's input has 1 channel")
    return notes


def _check_classes(spec: Any, summary: DataSummary, notes: list[str]) -> None:
    k = len(summary.class_names)
    names = ", ".join(summary.class_names[:10]) + (", ..." if k > 10 else "")
    if spec.classes < k:
        raise DataError(f"spec {spec.name!r} has {spec.classes} classes, but "
                        f"{summary.description} has {k} ({names}); set classes: {k} (and the "
                        f"last layer's units) or choose other data")
    if spec.classes > k and summary.kind != "builtin":
        notes.append(f"the spec has {spec.classes} classes and the data {k} ({names}): outputs "
                     f"{k}..{spec.classes - 1} are never a target")
