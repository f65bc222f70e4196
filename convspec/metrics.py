"""Classification metrics on NumPy arrays: accuracy, confusion matrix, per-class accuracy, and
the mean softmax cross-entropy of logits (the training loss, computed the same way for every
backend from the logits ``predict`` returns).

Framework-free: every backend's predictions are compared the same way, and the plots and the
report read the same numbers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .errors import ConvspecError


def as_class_indices(cls: ArrayLike, name: str, n: int | None = None) -> np.ndarray:
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


def confusion_matrix(cls_true: ArrayLike, cls_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts (K, K) int64 with rows = true class, columns = predicted class, K = num_classes.

    ``cls_true`` / ``cls_pred`` are class indices (or one-hot rows); ``ConvspecError`` when they
    differ in length or hold a class outside 0..K-1.
    """
    if num_classes < 1:
        raise ConvspecError(f"num_classes must be at least 1; got {num_classes}.")
    true, pred = as_class_indices(cls_true, "cls_true"), as_class_indices(cls_pred, "cls_pred")
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


def accuracy(cls_true: ArrayLike, cls_pred: ArrayLike) -> float:
    """Fraction of predictions equal to the true class; NaN for no predictions."""
    true, pred = as_class_indices(cls_true, "cls_true"), as_class_indices(cls_pred, "cls_pred")
    if len(true) != len(pred):
        raise ConvspecError(
            f"cls_true has {len(true)} labels but cls_pred has {len(pred)}; they must pair up."
        )
    return float((true == pred).mean()) if len(true) else float("nan")


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix (rows = true class): float64 (K,), NaN for
    a class with no examples."""
    support = cm.sum(axis=1)
    return np.divide(np.diag(cm), support, out=np.full(len(cm), np.nan), where=support > 0)


def cross_entropy(logits: ArrayLike, labels: ArrayLike) -> float:
    """Mean softmax cross-entropy of ``logits`` (N, K) against class indices ``labels`` (N,):
    mean over images of ``logsumexp(z) - z[label]``, in float64 (the backends' training loss,
    ``tf.nn.sparse_softmax_cross_entropy_with_logits`` / ``F.cross_entropy``). NaN for no
    images; ``ConvspecError`` when the shapes do not pair up or a label is outside 0..K-1."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ConvspecError(f"logits must be (N, classes); got shape {z.shape}.")
    y = as_class_indices(labels, "labels", len(z))
    if not len(z):
        return float("nan")
    if ((y < 0) | (y >= z.shape[1])).any():
        raise ConvspecError(f"labels contain a class outside 0..{z.shape[1] - 1}.")
    top = z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
    return float((log_norm - z[np.arange(len(z)), y]).mean())
