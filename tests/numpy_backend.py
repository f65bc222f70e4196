"""A third-party backend written against ``convspec.backends.base``: NumPy, plain SGD.

What a separate package needs to add a backend, and nothing more: a Backend class (found
through the ``convspec.backends`` entry-point group) and a ``BaseModel`` subclass with the
framework part (here: arrays are tensors, the forward pass is the reference ops', the
backward pass is written out). Input checks, predict batching, the weights and optimizer-state
formats and their checks come from the base. It handles multi-layer perceptrons (flatten,
dense, relu, dropout) and trains them with SGD; dropout uses ``convspec.dropout``'s masks, so
it trains to the same weights as the built-in backends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from convspec import dropout
from convspec.backends import check_device
from convspec.backends.base import BaseModel
from convspec.backends.reference import OPS
from convspec.errors import BackendError

KINDS = ("flatten", "dense", "relu", "dropout")


class NumpyBackend:
    name = "numpy"
    framework = "NumPy"
    module = "numpy"
    extra = "numpy"

    def compile(self, spec: Any, *, weights: Mapping[str, np.ndarray] | None = None,
                device: str = "cpu") -> NumpyModel:
        return NumpyModel(spec, weights=weights, device=device)


class SGD:
    """The ``base.Optimizer`` protocol: no slots, a step count, w -= lr g."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, params: list[np.ndarray]):
        self.params, self.step = params, 0

    def update(self, grads: Sequence[np.ndarray], learning_rate: float) -> None:
        for param, grad in zip(self.params, grads, strict=True):
            param -= np.float32(learning_rate) * grad
        self.step += 1

    def state(self) -> dict[str, np.ndarray]:
        return {}


class NumpyModel(BaseModel):
    backend = "numpy"

    def __init__(self, spec: Any, *, weights: Mapping[str, np.ndarray] | None = None,
                 device: str = "cpu"):
        super().__init__(spec)
        initial = self.initial_weights(weights)
        if check_device(device) == "cuda":
            raise BackendError("the numpy backend runs on the CPU only")
        unknown = sorted({layer.kind for layer in spec.layers} - set(KINDS)
                         | {f"dense with {layer.activation}" for layer in spec.layers
                            if layer.kind == "dense" and layer.activation not in (None, "relu")})
        if unknown or spec.train.optimizer.kind != "sgd":
            raise BackendError(f"the numpy backend trains {', '.join(KINDS)} layers with "
                               f"sgd; this spec has {unknown or spec.train.optimizer.kind}")
        self.device = "cpu"
        self.weights = {name: np.zeros(slot.shape, np.float32)
                        for name, slot in spec.table.weights.items()}
        self.optimizer = SGD([self.weights[name] for name in self.trainable])
        self.loss_scale = None
        self.set_weights(initial)

    def _forward(self, images: np.ndarray, training: bool) -> list[np.ndarray]:
        """Every layer's output (float64), dropout masks of the coming update in training."""
        outputs, x = [], images.astype(np.float64)
        for layer, row in zip(self.spec.layers, self.spec.table.rows, strict=True):
            x = OPS[layer.kind](layer, row, x, *(self.weights[n] for n in row.weights))
            if training and layer.kind == "dropout" and layer.rate > 0:
                x = x * dropout.multiplier(x.shape, layer.rate, self.spec.train.seed,
                                           self.optimizer.step, row.index)
            outputs.append(x)
        return outputs

    # -- the framework part: tensors are arrays ------------------------------------------

    def _weight_tensors(self) -> dict[str, np.ndarray]:
        return self.weights

    def _to_numpy(self, name: str, tensor: np.ndarray) -> np.ndarray:
        return tensor

    def _from_numpy(self, name: str, array: np.ndarray) -> np.ndarray:
        return array

    def _assign(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        for tensor, value in pairs:
            tensor[...] = value

    def _predict_batches(self, batches: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([self._forward(x, False)[-1] for x in batches]).astype(np.float32)

    def _forward_activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._forward(images, False)
        return {row.name: out.astype(np.float32)
                for row, out in zip(self.spec.table.rows, outputs, strict=True)}

    def _loss_and_gradients(self, images: np.ndarray, labels: np.ndarray,
                            training: bool) -> tuple[float, list[np.ndarray]]:
        return self._backward(images, labels, training)[:2]

    def _apply_step(self, images: np.ndarray, labels: np.ndarray, learning_rate: float,
                    fetch: bool) -> tuple[float, float] | None:
        loss, grads, logits = self._backward(images, labels, True)
        self.optimizer.update(grads, learning_rate)
        return (loss, float(np.mean(logits.argmax(axis=1) == labels))) if fetch else None

    def _backward(self, images: np.ndarray, labels: np.ndarray,
                  training: bool) -> tuple[float, list[np.ndarray], np.ndarray]:
        """Loss, gradients in ``self.trainable`` order, logits."""
        outputs = self._forward(images, training)
        logits = outputs[-1]
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
        rows = np.arange(len(labels))
        loss = float(-np.log(probs[rows, labels]).mean())
        grad = probs
        grad[rows, labels] -= 1.0
        grad /= len(labels)  # d mean loss / d logits
        grads: dict[str, np.ndarray] = {}
        for i in reversed(range(len(self.spec.layers))):
            layer, row = self.spec.layers[i], self.spec.table.rows[i]
            inputs = outputs[i - 1] if i else images.astype(np.float64)
            if layer.kind == "relu" or getattr(layer, "activation", None) == "relu":
                grad = grad * (outputs[i] > 0)
            if layer.kind == "dense":
                grads[f"{row.name}/kernel"] = inputs.T @ grad
                if layer.bias:
                    grads[f"{row.name}/bias"] = grad.sum(axis=0)
                grad = grad @ self.weights[f"{row.name}/kernel"].T.astype(np.float64)
            elif layer.kind == "dropout" and training and layer.rate > 0:
                grad = grad * dropout.multiplier(grad.shape, layer.rate, self.spec.train.seed,
                                                 self.optimizer.step, row.index)
            elif layer.kind == "flatten":
                grad = grad.reshape(inputs.shape)
        return loss, [grads[name].astype(np.float32) for name in self.trainable], logits
