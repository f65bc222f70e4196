"""Dropout masks (``convspec.dropout``): the definition, and every backend computing its bits
exactly, for NHWC inputs (torch: NCHW), flat features (torch: permuted), a resumed step, and
a data-parallel shard that starts at a later row of the global batch."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from conftest import lowbias32

from convspec import dropout
from convspec.specification import loads_spec

# Dropout straight on the input (ones, so the first layer's output is its multiplier), then
# on the flattened features (torch stores them in C, H, W order, the canonical order is
# H, W, C), then a dense layer for the logits.
SPEC = """
name: masks
input: {height: 3, width: 4, channels: 5}
classes: 2
layers:
  - {kind: dropout, rate: 0.3}
  - {kind: flatten}
  - {kind: dropout, rate: 0.5}
  - {kind: dense, units: 2}
train: {seed: 11}
"""
STEPS = [0, 1, 7, 2**32 + 5]  # a fresh run, later steps, one beyond 32 bits (its high word)



def test_the_definition_as_documented():
    seed, step, index, rate = 7, 2**32 + 5, 3, 0.3
    key = lowbias32(np.array(zlib.crc32(f"{seed}/{index}".encode())) ^ (step & 0xFFFFFFFF))
    key = lowbias32(key ^ (step >> 32))
    assert dropout.key(seed, step, index) == int(key)
    assert all(dropout.mix(int(v)) == int(lowbias32(np.array(v))) for v in (0, 1, 2**32 - 1))
    bits = lowbias32(lowbias32(np.arange(2000)) ^ key) >> 8
    want = bits >= np.ceil(rate * 2**24)
    np.testing.assert_array_equal(dropout.keep_mask((40, 50), rate, seed, step, index).ravel(),
                                  want)
    multiplier = dropout.multiplier((40, 50), rate, seed, step, index)
    assert multiplier.dtype == np.float32
    assert set(np.unique(multiplier)) == {0.0, np.float32(1 / (1 - rate))}
    assert abs(want.mean() - (1 - rate)) < 0.03


def test_a_shard_draws_its_rows_of_the_global_batch_masks():
    whole = dropout.keep_mask((8, 3, 4, 5), 0.5, 1, 9, 2)
    for first_row in (0, 2, 6):
        shard = dropout.keep_mask((2, 3, 4, 5), 0.5, 1, 9, 2, first_row=first_row)
        np.testing.assert_array_equal(shard, whole[first_row:first_row + 2])


def test_masks_depend_on_seed_step_and_layer():
    masks = [dropout.keep_mask((16, 32), 0.5, *args) for args in
             ((1, 0, 0), (2, 0, 0), (1, 1, 0), (1, 0, 1), (1, 2**32, 0))]
    for i, a in enumerate(masks):
        for b in masks[i + 1:]:
            assert 0.3 < np.mean(a != b) < 0.7


def test_rate_zero_keeps_everything_and_rates_near_one_drop_almost_all():
    assert dropout.keep_mask((4, 100), 0.0, 0, 3, 1).all()
    assert dropout.keep_mask((4, 1000), 0.99, 0, 3, 1).mean() < 0.03


def _torch_train_activations(spec, images, step: int, first_row: int) -> dict[str, np.ndarray]:
    """Train-mode output of every layer of the torch network, in canonical layout."""
    import torch

    from convspec.backends.torch.network import Network
    from convspec.backends.torch.ops import Mode

    net = Network(spec)
    keys = torch.tensor(net.dropout_keys(step), dtype=torch.int64)
    mode = Mode(training=True, keys=keys, first_row=first_row)
    collected: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        net(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), mode, collected)
    out = {}
    for name, tensor in collected.items():
        array = (tensor.permute(0, 2, 3, 1) if tensor.dim() == 4 else tensor).numpy()
        perm = net.out_perm[name]
        out[name] = array if perm is None else array[:, perm]
    return out


def _tensorflow_train_activations(spec, images, step: int,
                                  first_row: int) -> dict[str, np.ndarray]:
    import tensorflow as tf

    from convspec.backends.tensorflow.network import Network
    from convspec.backends.tensorflow.ops import Mode

    mode = Mode(training=True, step=tf.constant(step, tf.int64), first_row=first_row)
    activations = Network(spec)(tf.constant(images), mode, collect=True).activations
    return {name: value.numpy() for name, value in activations.items()}


TRAIN_ACTIVATIONS = {"torch": _torch_train_activations,
                     "tensorflow": _tensorflow_train_activations}


@pytest.mark.parametrize("first_row", [0, 6], ids=["whole-batch", "shard-from-row-6"])
@pytest.mark.parametrize("step", STEPS)
def test_every_backend_draws_the_numpy_masks_bit_for_bit(backend_name, step, first_row):
    spec = loads_spec(SPEC)
    n, seed = 4, spec.train.seed
    got = TRAIN_ACTIVATIONS[backend_name](spec, np.ones((n, 3, 4, 5), np.float32), step,
                                          first_row)
    first = dropout.multiplier((n, 3, 4, 5), 0.3, seed, step, 0, first_row)
    np.testing.assert_array_equal(got["dropout1"], first)  # NHWC positions
    second = dropout.multiplier((n, 60), 0.5, seed, step, 2, first_row)
    np.testing.assert_array_equal(got["dropout2"], first.reshape(n, 60) * second)  # H, W, C
