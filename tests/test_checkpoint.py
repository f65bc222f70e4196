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


def test_the_loops_state_round_trips_json_and_arrays():
    best = {"conv1/kernel": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}
    state = {"trainer": {"window": {"loss": 0.1 + 0.2, "accuracy": 1 / 3, "steps": 3},
                         "stop_training": False, "val_loss": None},
             "best": {"value": 0.25, "iteration": 40,
                      **{f"weights/{k}": v for k, v in best.items()}},
             "early_stopping": {"best": 0.9, "wait": 2, "stopped_at": None}}
    ckpt = Checkpoint(40, {}, {"step": np.array(40)}, {"order": [0], "pos": 0, "epoch": 0,
                                                       "rng": {}}, 1.0, state)
    arrays, meta = encode(ckpt, {})
    assert "state/best/weights/conv1/kernel" in arrays
    back = decode(arrays, meta)
    np.testing.assert_array_equal(back.state["best"].pop("weights/conv1/kernel"),
                                  best["conv1/kernel"])
    state["best"].pop("weights/conv1/kernel")
    assert back.state == state  # floats exactly (JSON keeps repr), None and booleans


def test_a_checkpoint_of_an_older_version_has_no_loop_state():
    ckpt = Checkpoint(1, {}, {}, {"order": [0], "pos": 0, "epoch": 0, "rng": {}}, 0.5)
    arrays, meta = encode(ckpt, {})
    del meta["state"]
    assert decode(arrays, meta).state == {}


def _encoded():
    ckpt = Checkpoint(7, {"fc1/kernel": np.ones((2, 3), np.float32)},
                      {"step": np.array(7, np.int64), "m/fc1/kernel": np.zeros((2, 3))},
                      {"order": [2, 0, 1], "pos": 1, "epoch": 4, "rng": {"state": 5}}, 2.25)
    return encode(ckpt, {"architecture_hash": "abc"})


@pytest.mark.parametrize(("arrays", "meta", "message"), [
    ({}, {"iteration": "seven"}, "its iteration is 'seven', not a non-negative integer"),
    ({}, {"iteration": "-1"}, "its iteration is '-1'"),
    ({}, {"iteration": "9" * 40}, "its iteration is '9999"),
    ({}, {"elapsed": "nan"}, "its elapsed time is 'nan'"),
    ({}, {"sampler": "[1, 2]"}, "its sampler state is not a JSON object"),
    ({}, {"sampler": "{"}, "its sampler state is not JSON"),
    ({"weights/fc1/kernel": np.ones((2, 3), np.int32)}, {},
     "weights/fc1/kernel is int32, not float32"),
    ({"weights/fc1/kernel": np.full((2, 3), np.inf, np.float32)}, {},
     "weights/fc1/kernel holds NaN or infinite values"),
    ({"optimizer/step": np.array(7, np.int32)}, {}, "optimizer/step is int32, not int64"),
    ({"optimizer/m/fc1/kernel": np.zeros((2, 3), np.float16)}, {},
     "optimizer/m/fc1/kernel is float16, not float32"),
    ({"sampler/order": np.array([2.0, 0.0, 1.0])}, {}, "sampler/order is float64"),
])
def test_every_field_is_checked_on_decoding(arrays, meta, message):
    good_arrays, good_meta = _encoded()
    with pytest.raises(ValueError, match=message):
        decode({**good_arrays, **arrays}, {**good_meta, **meta})


def test_encoding_writes_the_canonical_types():
    arrays, _ = _encoded()
    assert arrays["optimizer/m/fc1/kernel"].dtype == np.float32  # given as float64
    assert arrays["optimizer/step"].dtype == np.int64
    assert arrays["weights/fc1/kernel"].dtype == np.float32
