"""Classify image files with a trained network, reading them as the network was trained.

Files are read by the one image decoder (``convspec.data.decoder``: orientation, bit depth,
palettes, transparency over a background, grey / RGB as the spec says, resize only when asked)
and preprocessed as the run recorded (``convspec.data.preprocess``), so a file gives the same
input as the same image in the training data. Results are plain rows for text, CSV or JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data.decoder import DecodeOptions, ImageProblem, decode_image, is_image_file
from .data.preprocess import Preprocessing
from .errors import DataError

BATCH = 256  # files decoded and predicted at a time


@dataclass(frozen=True)
class Prediction:
    """One file's class probabilities (softmax of the logits), in class order."""

    path: str
    probabilities: np.ndarray

    @property
    def best(self) -> int:
        return int(np.argmax(self.probabilities))

    def top(self, k: int) -> list[int]:
        return [int(c) for c in np.argsort(-self.probabilities, kind="stable")[:k]]


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Files as given, folders as the image files under them (recursively, sorted).
    ``DataError`` for a missing path or a folder without images."""
    files: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(Path(here) / name) for here, _, names in os.walk(path)
                           for name in names if is_image_file(name))
            if not found:
                raise DataError(f"{path}: no image files in this folder")
            files += found
        elif path.exists():
            files.append(item)
        else:
            raise DataError(f"{item}: no such image file or folder")
    return files


def predict_files(model: Any, paths: Sequence[str], options: DecodeOptions,
                  preprocessing: Preprocessing, *, invert: bool = False,
                  warn: Callable[[str], None] = print) -> list[Prediction]:
    """Decode, preprocess and classify ``paths`` in batches; ``warn`` hears about resized
    images, pictures kept only in the alpha channel and dark-on-light figures. Raises
    ``DataError`` naming a file that cannot be read or has the wrong size."""
    out: list[Prediction] = []
    for start in range(0, len(paths), BATCH):
        chunk = paths[start:start + BATCH]
        pixels = np.stack([_read(path, options, invert, warn) for path in chunk])
        logits = model.predict(preprocessing.apply(pixels)).astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        out += [Prediction(path, p) for path, p in zip(chunk, probs)]
    return out


def _read(path: str, options: DecodeOptions, invert: bool,
          warn: Callable[[str], None]) -> np.ndarray:
    try:
        decoded = decode_image(path, options)
    except ImageProblem as exc:
        hint = ("; give --resize bilinear (or nearest, bicubic, lanczos, box, hamming) to "
                "resize it" if exc.kind == "size" else "")
        raise DataError(exc.message + hint) from None
    if decoded.resized_from is not None:
        w, h = decoded.resized_from
        warn(f"note: {path} is {w}x{h}; resized to {options.width}x{options.height} "
             f"({options.resize})")
    if decoded.alpha_only:
        warn(f"note: {path} keeps its picture in the alpha channel only (ink the colour of "
             "the background, as a browser canvas saves it); read as ink of the opposite "
             "colour")
    pixels = decoded.pixels
    if invert:
        return 255 - pixels
    if pixels.shape[-1] == 1 and pixels.mean() > 127.5:
        warn(f"warning: {path} looks like a dark figure on a light background; MNIST-style "
             "data is light on dark, so consider --invert")
    return pixels


def rows(predictions: Sequence[Prediction], names: Sequence[str], top: int
         ) -> list[dict[str, Any]]:
    """One plain record per file: path, class, name, probability, top-k, all probabilities."""
    return [{"path": p.path, "class": p.best, "name": names[p.best],
             "probability": float(p.probabilities[p.best]),
             "top": [{"class": c, "name": names[c], "probability": float(p.probabilities[c])}
                     for c in p.top(top)],
             "probabilities": [float(v) for v in p.probabilities]} for p in predictions]


def format_rows(records: list[dict[str, Any]], names: Sequence[str], fmt: str) -> str:
    """``text`` (the tutorial-style line per file), ``csv`` (path, class, name, probability,
    then one ``p(<name>)`` column per class) or ``json`` (a list of records)."""
    if fmt == "json":
        return json.dumps(records, indent=1) + "\n"
    if fmt == "csv":
        table = io.StringIO(newline="")
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(["path", "class", "name", "probability", *(f"p({n})" for n in names)])
        for r in records:
            writer.writerow([r["path"], r["class"], r["name"], f"{r['probability']:.6f}",
                             *(f"{v:.6f}" for v in r["probabilities"])])
        return table.getvalue()

    def label(c: int) -> str:
        return f"{c} ({names[c]})" if names[c] != str(c) else str(c)

    lines = []
    for r in records:
        ranked = ", ".join(f"{label(t['class'])}: {t['probability']:.1%}" for t in r["top"])
        lines.append(f"{r['path']}: {label(r['class'])}  [{ranked}]")
    return "\n".join(lines) + "\n"
