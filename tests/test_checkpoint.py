"""convspec.checkpoint: the training state to safetensors arrays and metadata, and back."""

from __future__ import annotations

import numpy as np
import pytest

from convspec.checkpoint import CHECKPOINT_FORMAT, Checkpoint, decode, encode


def test_encode_decode_round_trip():
    ckpt = Checkpoint(7, {"fc1/kernel": np.ones((2, 3), np.float32)},
                      {"step": np.array(7, np.int64), "m/fc1/kernel": np.zeros((2, 3))},
                      {"order": [2, 0, 1], "pos": 1, "epoch": 4, "rng": {"state": 5}}, 2.25)
    arrays, meta = encode(ckpt, {"architecture_hash": "abc", "fingerprint": "{}"})
    assert meta["format"] == CHECKPOINT_FORMAT and meta["architecture_hash"] == "abc"
    assert meta["fingerprint"] == "{}"
    assert arrays["optimizer/step"].shape == () and arrays["sampler/order"].dtype == np.int64
    back = decode(arrays, meta)
    assert (back.iteration, back.elapsed) == (7, 2.25)
    assert back.sampler["rng"] == {"state": 5} and back.sampler["pos"] == 1
    np.testing.assert_array_equal(back.sampler["order"], [2, 0, 1])
    np.testing.assert_array_equal(back.weights["fc1/kernel"], ckpt.weights["fc1/kernel"])
    assert set(back.optimizer) == {"step", "m/fc1/kernel"}
    assert "sampler/order" in arrays  # decoding leaves the caller's arrays alone
    with pytest.raises(ValueError, match="not a convspec checkpoint"):
        decode(arrays, {**meta, "format": "convspec-weights/1"})
