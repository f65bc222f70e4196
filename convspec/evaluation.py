"""One evaluator for every backend: accuracy, per-class accuracy, confusion matrix, errors.

It needs only ``model.predict``, so weights trained with one backend evaluate identically in
another, and the results are plain NumPy for printing and plotting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .data.dataset import Split
from .metrics import confusion_matrix, cross_entropy, per_class_accuracy


@dataclass(frozen=True)
class Evaluation:
    cls_true: np.ndarray
    cls_pred: np.ndarray
    logits: np.ndarray
    num_classes: int

    @property
    def correct(self) -> int:
        return int((self.cls_true == self.cls_pred).sum())

    @property
    def total(self) -> int:
        return len(self.cls_true)

    @property
    def accuracy(self) -> float:
        """The fraction classified right; NaN for no images (``to_dict`` writes null)."""
        return self.correct / self.total if self.total else float("nan")

    @property
    def loss(self) -> float:
        """Mean softmax cross-entropy of the logits (``convspec.metrics.cross_entropy``)."""
        return cross_entropy(self.logits, self.cls_true)

    @property
    def misclassified(self) -> np.ndarray:
        """Indices of the wrongly classified images, in dataset order."""
        return np.flatnonzero(self.cls_true != self.cls_pred)

    @property
    def confusion(self) -> np.ndarray:
        """(K, K) int64 counts, rows = true class, columns = predicted class."""
        return confusion_matrix(self.cls_true, self.cls_pred, self.num_classes)

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """(K,) float64 accuracy within each true class; NaN for a class with no images."""
        return per_class_accuracy(self.confusion)

    def summary(self, split: str = "Test-Set") -> str:
        """The tutorial's line: ``Accuracy on Test-Set: 98.8% (9876 / 10000)`` (``...: no
        images`` for an empty set)."""
        if not self.total:
            return f"Accuracy on {split}: no {split.removesuffix('-Set').lower()} images"
        return f"Accuracy on {split}: {self.accuracy:.1%} ({self.correct} / {self.total})"

    def report(self, class_names: tuple[str, ...] | None = None) -> str:
        """Summary, per-class accuracy and the confusion matrix as printed in the tutorial."""
        names = class_names or tuple(str(i) for i in range(self.num_classes))
        lines = [self.summary(), "Per-class accuracy:"]
        cm = self.confusion
        for i, (name, acc) in enumerate(zip(names, self.per_class_accuracy)):
            lines.append(f"  {i} {name:<12} {acc:6.1%} ({cm[i, i]} / {cm[i].sum()})")
        lines += ["Confusion Matrix:", format_confusion(cm)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy if self.total else None,
                "loss": self.loss if self.total else None,
                "correct": self.correct, "total": self.total,
                "per_class_accuracy": [None if np.isnan(a) else float(a)
                                       for a in self.per_class_accuracy],
                "confusion_matrix": self.confusion.tolist(),
                "misclassified": self.misclassified.tolist()}


def require_images(split: Split, name: str, source: str) -> None:
    """Refuse (``DataError``) to evaluate a split of no images: there is nothing to measure."""
    if len(split) == 0:
        from .errors import DataError

        raise DataError(f"the {name} set of {source} has no images; there is nothing to "
                        f"evaluate (choose another --split, or --data with {name} images)")


def format_confusion(cm: np.ndarray) -> str:
    """Rows = true class, columns = predicted, aligned like NumPy prints it."""
    width = len(str(int(cm.max()))) if cm.size else 1
    rows = [" ".join(f"{int(v):>{width}}" for v in row) for row in cm]
    return "\n".join(("[[" if i == 0 else " [") + r + ("]]" if i == len(rows) - 1 else "]")
                     for i, r in enumerate(rows))


def evaluate(model: Any, split: Split, batch_size: int | None = None,
             num_classes: int | None = None) -> Evaluation:
    """Predict ``split`` with a compiled model and compare with its labels.

    Images go through ``model.predict`` in batches of ``batch_size`` (default: the spec's
    ``train.eval_batch_size``; stored images are converted a few batches at a time);
    ``num_classes`` defaults to the spec's ``classes``. An empty split gives an evaluation
    of no images (accuracy NaN, written as null; see ``require_images``). Available as
    ``convspec.evaluate(model, split)``.
    """
    if batch_size is None:
        batch_size = model.spec.train.eval_batch_size
    if isinstance(split.images, np.ndarray):
        logits = model.predict(split.images, batch_size=batch_size)
    else:  # stored images, converted a chunk of whole batches at a time (same batches)
        chunk = batch_size * max(1, 8192 // batch_size)
        parts = [model.predict(x, batch_size=batch_size) for x in split.images.chunks(chunk)]
        logits = (np.concatenate(parts) if parts
                  else np.zeros((0, model.spec.classes), np.float32))
    n = num_classes or model.spec.classes
    return Evaluation(split.labels.astype(np.int64), logits.argmax(axis=1).astype(np.int64),
                      logits, n)
