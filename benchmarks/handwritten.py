"""Idiomatic hand-written PyTorch and Keras versions of the tutorial network: the baselines.

Written the way an expert would write this network directly in each framework, without
convspec. For 28x28 inputs, 5x5 stride-1 SAME convolutions are symmetric padding 2 and 2x2
SAME pools on even sizes pad nothing, so these compute the same function as specs/mnist.yaml.
"""

from __future__ import annotations

from typing import Any


def torch_model() -> tuple[Any, Any, Any]:
    """(model, optimizer, step function) in plain PyTorch."""
    import torch
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(16, 36, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(1764, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: Any, y: Any) -> Any:  # x: NCHW float32 tensor, y: int64 tensor
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return model, optimizer, step


def keras_model() -> tuple[Any, Any]:
    """(model, compiled train step) in Keras 3 on TensorFlow, idiomatic custom step."""
    import keras
    import tensorflow as tf

    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 5, padding="same"), keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.ReLU(),
        keras.layers.Conv2D(36, 5, padding="same"), keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.ReLU(),
        keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10),
    ])
    optimizer = keras.optimizers.Adam(1e-4, epsilon=1e-8)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32),
                                  tf.TensorSpec([None], tf.int64)])
    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return model, step
