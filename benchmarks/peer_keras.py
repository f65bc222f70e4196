"""Hand-written Keras 3: a ``Sequential`` model, ``compile`` and ``model.fit`` on ``tf.data``.

The pipeline gathers each minibatch from the resident arrays with the shared index rows
(``from_tensor_slices(rows).map(gather).prefetch(AUTOTUNE)``: the same work as the usual
``shuffle().batch()``, with the same batches as every other peer). Keras's defaults otherwise
(no XLA on a CPU-only machine, ``steps_per_execution=1``); epsilon 1e-8 as the spec's Adam.
Evaluation is ``model.predict(batch_size=256)`` and an argmax.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from protocol import BATCH, EVAL_BATCH, Data


class KerasFit:
    def __init__(self, data: Data):
        import keras
        import tensorflow as tf

        self.keras, self.tf, self.data = keras, tf, data
        self.model = keras.Sequential([
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 5, padding="same"),
            keras.layers.MaxPooling2D(2, padding="same"), keras.layers.ReLU(),
            keras.layers.Conv2D(36, 5, padding="same"),
            keras.layers.MaxPooling2D(2, padding="same"), keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ])
        w = data.weights
        self.model.set_weights([w[f"{layer}/{slot}"] for layer in ("conv1", "conv2", "fc1", "fc2")
                                for slot in ("kernel", "bias")])
        self.model.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def train(self, steps: int, on_step_end: Callable[[int], None]) -> None:
        tf = self.tf
        images, labels = tf.constant(self.data.train_x), tf.constant(self.data.train_y)
        rows = self.data.batches[:steps]
        assert rows.shape[1] == BATCH
        ds = (tf.data.Dataset.from_tensor_slices(rows)
              .map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))
              .prefetch(tf.data.AUTOTUNE))

        class Stamp(self.keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: object = None) -> None:
                on_step_end(batch)

        self.model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[Stamp()])

    def evaluate(self) -> float:
        logits = self.model.predict(self.data.test_x, batch_size=EVAL_BATCH, verbose=0)
        return float(np.mean(logits.argmax(1) == self.data.test_y))


build = KerasFit
