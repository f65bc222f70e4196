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


def test_cross_entropy_is_the_backends_training_loss() -> None:
    from convspec.backends.reference import softmax_cross_entropy

    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(50, 10)) * 20).astype(np.float32)  # large: needs the stable form
    labels = rng.integers(0, 10, 50)
    assert metrics.cross_entropy(logits, labels) == pytest.approx(
        softmax_cross_entropy(logits, labels), rel=1e-12)
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits, dtype=torch.float64),
                                                 torch.tensor(labels))
    assert metrics.cross_entropy(logits, labels) == pytest.approx(float(expected), rel=1e-12)
    assert metrics.cross_entropy(np.zeros((4, 10)), [0, 1, 2, 3]) == pytest.approx(np.log(10))
    assert np.isnan(metrics.cross_entropy(np.zeros((0, 3)), []))


def test_cross_entropy_errors() -> None:
    with pytest.raises(ConvspecError, match="logits must be"):
        metrics.cross_entropy(np.zeros(3), [0, 1, 2])
    with pytest.raises(ConvspecError, match="labels has 2 labels but there are 3 images"):
        metrics.cross_entropy(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ConvspecError, match="outside 0..1"):
        metrics.cross_entropy(np.zeros((2, 2)), [0, 2])
