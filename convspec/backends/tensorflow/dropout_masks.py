"""Dropout masks in TensorFlow: ``convspec.dropout``'s counter hash, so every backend draws
the same bits for the same step, layer and element (see ``convspec.dropout``).

``convspec.dropout``'s counter hash in uint32, so the bits are the same with or
without XLA, on any device, and in NumPy (TensorFlow's stateless Philox differs under XLA).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow as tf

from ... import dropout

if TYPE_CHECKING:
    from .ops import Call


def _mix(x: tf.Tensor) -> tf.Tensor:
    """lowbias32 (see ``convspec.dropout.mix``)."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16)) * tf.constant(dropout.M1,
                                                                             tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15)) * tf.constant(dropout.M2,
                                                                             tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _u32(value: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.bitwise.bitwise_and(value, dropout.MASK32), tf.uint32)


def dropout_key(layer_key: int, step: tf.Tensor) -> tf.Tensor:
    """``convspec.dropout.key`` of a layer at the (int64 tensor) optimizer step."""
    step = tf.cast(step, tf.int64)
    key = _mix(tf.bitwise.bitwise_xor(tf.constant(layer_key, tf.uint32), _u32(step)))
    return _mix(tf.bitwise.bitwise_xor(key, _u32(tf.bitwise.right_shift(step, 32))))


def dropout_positions(shape: tf.Tensor, first_row: tf.Tensor | int) -> tf.Tensor:
    """The canonical index (``convspec.dropout``'s ``i``) of every element of an input of
    ``shape``, row-major from row ``first_row`` of the global batch, flattened."""
    start = tf.cast(first_row, tf.int32) * tf.reduce_prod(shape[1:])
    return tf.cast(tf.range(start, start + tf.reduce_prod(shape)), tf.uint32)


def dropout_mask(call: Call, rate: float, x: tf.Tensor) -> tf.Tensor:
    """The multiplier of ``x`` (0 or 1 / (1 - rate), in x's type): ``convspec.dropout``'s
    masks, the same bits as every other backend."""
    if call.mode.step is None:
        raise ValueError("dropout in training mode needs the optimizer step")
    key = dropout_key(call.layer_key, call.mode.step)
    positions = dropout_positions(tf.shape(x), call.mode.first_row)
    bits = tf.bitwise.right_shift(_mix(tf.bitwise.bitwise_xor(_mix(positions), key)),
                                  dropout.SHIFT)
    keep = bits >= tf.constant(dropout.threshold(rate), tf.uint32)
    mask = tf.reshape(tf.cast(keep, tf.float32) * dropout.scale(rate), tf.shape(x))
    return tf.cast(mask, x.dtype)
