"""convspec.data.preprocess: the conversion per batch equals the conversion of the whole."""

from __future__ import annotations

import numpy as np
import pytest

from convspec.data.dataset import to_split
from convspec.data.preprocess import ImageArray, Preprocessing, channel_stats
from convspec.errors import DataError


@pytest.fixture
def stored() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (50, 5, 4, 3), dtype=np.uint8)


def test_scaling_is_bit_identical_to_the_builtin_conversion(stored):
    grey = stored[..., 0]
    whole = to_split(grey, np.zeros(50, np.int64)).images  # what the built-ins have always done
    lazy = ImageArray(grey[..., None])
    np.testing.assert_array_equal(np.asarray(lazy), whole)
    idx = np.array([7, 3, 3, 49])
    assert lazy[idx].dtype == np.float32
    np.testing.assert_array_equal(lazy[idx], whole[idx])
    np.testing.assert_array_equal(lazy[2], whole[2])
    np.testing.assert_array_equal(lazy[2, :, :, 0], whole[2, :, :, 0])
    np.testing.assert_array_equal(lazy[1:4], whole[1:4])


def test_rows_and_normalisation(stored):
    rows = np.array([10, 0, 5])
    pre = Preprocessing("1/255", (0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    lazy = ImageArray(stored, rows, pre)
    assert len(lazy) == 3 and lazy.shape == (3, 5, 4, 3)
    expected = (stored[rows].astype(np.float32) / np.float32(255) - np.float32(
        [0.5, 0.25, 0.0])) / np.float32([0.5, 0.25, 1.0])
    np.testing.assert_allclose(np.asarray(lazy), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(lazy[1, 0, 0], expected[1, 0, 0], atol=1e-6)  # whole, then pick
    assert [len(b) for b in lazy.chunks(2)] == [2, 1]
    floats = ImageArray(stored[:2].astype(np.float32) / 255)
    assert floats.preprocessing.scale == "1"
    np.testing.assert_array_equal(floats[0], stored[0].astype(np.float32) / 255)


def test_channel_stats_match_numpy(stored):
    mean, std = channel_stats(ImageArray(stored), chunk=7)
    scaled = stored.astype(np.float64) / 255
    # summed in float64 over the float32 inputs the network sees (pixel / 255 in float32)
    np.testing.assert_allclose(mean, scaled.mean(axis=(0, 1, 2)), rtol=1e-7)
    np.testing.assert_allclose(std, scaled.std(axis=(0, 1, 2)), rtol=1e-6)
    with pytest.raises(DataError, match="constant in the training images"):
        channel_stats(ImageArray(np.zeros((3, 2, 2, 1), np.uint8)))


def test_record_round_trip_and_formula():
    pre = Preprocessing("1/255", (0.1307,), (0.3081,))
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    assert pre.formula() == "x = (pixel / 255 - mean) / std per channel, mean [0.1307], " \
                            "std [0.3081]"
    assert Preprocessing().formula() == "x = pixel / 255"
    with pytest.raises(DataError):
        Preprocessing("1/255", (0.1,), None)
