"""convspec.metrics: confusion matrix, accuracy and per-class accuracy on class indices."""

from __future__ import annotations

import numpy as np
import pytest

from convspec import metrics
from convspec.errors import ConvspecError


def test_confusion_matrix_counts() -> None:
    cm = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], num_classes=4)
    expected = [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64


def test_confusion_matrix_errors() -> None:
    with pytest.raises(ConvspecError, match="class 3, outside 0..2"):
        metrics.confusion_matrix([0, 3], [0, 1], num_classes=3)
    with pytest.raises(ConvspecError, match="cls_true has 2 labels but cls_pred has 1"):
        metrics.confusion_matrix([0, 1], [0], num_classes=3)
    with pytest.raises(ConvspecError, match="integer class indices"):
        metrics.confusion_matrix([0.5, 1], [0, 1], num_classes=3)


def test_confusion_matrix_accepts_one_hot() -> None:
    one_hot = np.eye(3)[[2, 0, 1]]
    cm = metrics.confusion_matrix(one_hot, [2, 0, 0], 3)
    np.testing.assert_array_equal(cm.diagonal(), [1, 0, 1])


def test_accuracy_and_per_class_accuracy() -> None:
    true, pred = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2]
    assert metrics.accuracy(true, pred) == pytest.approx(4 / 6)
    assert np.isnan(metrics.accuracy([], []))
    per_class = metrics.per_class_accuracy(metrics.confusion_matrix(true, pred, 4))
    np.testing.assert_allclose(per_class[:3], [0.5, 1.0, 2 / 3])
    assert np.isnan(per_class[3])  # no images of class 3
    with pytest.raises(ConvspecError, match="cls_true has 2 labels but cls_pred has 1"):
        metrics.accuracy([0, 1], [0])
