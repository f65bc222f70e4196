"""convspec.data.splits: stratified, seeded, reproducible, disjoint."""

from __future__ import annotations

import numpy as np
import pytest

from convspec.data.splits import split_pool
from convspec.errors import DataError


def test_split_is_stratified_disjoint_and_reproducible():
    labels = np.repeat(np.arange(4), [40, 30, 20, 10])
    train, val, test = split_pool(labels, validation=0.1, test=0.2, seed=3)
    assert len(test) == 20 and len(val) == 10 and len(train) == 70
    assert np.bincount(labels[test]).tolist() == [8, 6, 4, 2]
    assert np.bincount(labels[val]).tolist() == [4, 3, 2, 1]
    everything = np.concatenate([train, val, test])
    assert sorted(everything.tolist()) == list(range(100))
    assert all((np.diff(part) > 0).all() for part in (train, val, test))  # source order
    again = split_pool(labels, validation=0.1, test=0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    other = split_pool(labels, validation=0.1, test=0.2, seed=4)
    assert not np.array_equal(test, other[2])


def test_given_sets_are_not_carved():
    labels = np.arange(10) % 2
    train, val, test = split_pool(labels, validation=None, test=None, seed=0)
    assert val is None and test is None and train.tolist() == list(range(10))
    train, val, test = split_pool(labels, validation=0.2, test=None, seed=0)
    assert test is None and len(val) == 2 and np.bincount(labels[val]).tolist() == [1, 1]


def test_too_few_images():
    with pytest.raises(DataError, match="test_split 0.9 of 3 images leaves no training"):
        split_pool(np.array([0, 1, 0]), validation=None, test=0.9, seed=0)
