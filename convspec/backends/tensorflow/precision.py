"""``convspec.precision`` in TensorFlow: the compute type and fp16 loss scaling.

Variables stay float32; in bf16 / fp16 the ops cast them to the compute type at use (see
``ops.Call.dtype``), and batch-norm statistics, logits and loss stay float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from ...precision import GROWTH_INTERVAL, INITIAL_SCALE

# precision -> the type convolutions, dense layers, pooling and activations compute in
COMPUTE_DTYPES: dict[str, tf.DType] = {
    "fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}


class LossScale(tf.Module):
    """fp16 dynamic loss scaling with ``convspec.precision``'s rule, as graph ops."""

    def __init__(self) -> None:
        super().__init__(name="loss_scale")
        self.scale = tf.Variable(INITIAL_SCALE, dtype=tf.float32, trainable=False)
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False)

    def unscale(self, grads: Sequence[tf.Tensor]) -> tuple[list[tf.Tensor], tf.Tensor]:
        """The gradients divided by the scale, and whether they are all finite."""
        grads = [g / self.scale for g in grads]
        return grads, tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])

    def update(self, finite: tf.Tensor) -> None:
        """The scale after a step whose gradients were ``finite`` or not."""
        good = self.good_steps + 1
        grow = tf.logical_and(finite, good >= GROWTH_INTERVAL)
        self.scale.assign(tf.where(finite, tf.where(grow, self.scale * 2.0, self.scale),
                                   self.scale / 2.0))
        self.good_steps.assign(tf.where(tf.logical_and(finite, tf.logical_not(grow)), good,
                                        tf.zeros_like(good)))

    def state(self) -> tuple[float, int]:
        return float(self.scale.numpy()), int(self.good_steps.numpy())

    def set_state(self, scale: float, good_steps: int) -> None:
        self.scale.assign(scale)
        self.good_steps.assign(good_steps)
