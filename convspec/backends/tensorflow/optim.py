"""Optimizers with convspec's update rules, written as TF ops on slot variables.

Keras optimizers are not used on purpose: their defaults (epsilon 1e-7, iteration counters,
variable naming) are not the spec's, and the canonical state (``step``, ``m/<w>``, ``v/<w>``,
``accum/<w>``) must map one-to-one onto variables so state moves between backends exactly.

The formulas are spelled out op by op, with constants such as ``1 - beta2`` computed in
float64 and rounded once, i.e. the same float32 arithmetic as the PyTorch backend. TF's fused
``ResourceApplyAdam`` kernel is twice as fast on the update but computes ``1 - beta2`` in
float32 (1.3e-5 off for 0.999): a slightly different Adam that drifted 2e-4 (relative) from
PyTorch in 50 MNIST steps, against 5e-6 for these ops.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from ...errors import BackendError
from ...weights import check_optimizer_state

Params = Sequence[tuple[str, tf.Variable]]


class Optimizer(tf.Module, metaclass=abc.ABCMeta):
    """Base: an int64 ``step`` and zero-initialised slots per trainable weight."""

    slots: tuple[str, ...] = ()

    def __init__(self, config: Any, params: Params):
        super().__init__(name=f"convspec_{config.kind}")
        self.config = config
        self.params = list(params)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.slot_vars = {f"{slot}/{name}": tf.Variable(tf.zeros_like(var), trainable=False,
                                                        name=f"{slot}/{name}")
                          for slot in self.slots for name, var in self.params}

    def apply(self, grads: Sequence[tf.Tensor]) -> None:
        """One update of every parameter (call inside a tf.function); then step += 1."""
        lr = self._learning_rate()
        for (name, var), grad in zip(self.params, grads, strict=True):
            self._update(name, var, grad, lr)
        self.step.assign_add(1)

    def _learning_rate(self) -> tf.Tensor | float:
        return self.config.learning_rate

    @abc.abstractmethod
    def _update(self, name: str, var: tf.Variable, grad: tf.Tensor,
                lr: tf.Tensor | float) -> None:
        """The update rule for one variable (and its slots)."""

    def state(self) -> dict[str, np.ndarray]:
        out = {"step": np.asarray(self.step.numpy(), dtype=np.int64)}
        out.update({k: v.numpy().copy() for k, v in self.slot_vars.items()})
        return out

    def set_state(self, state: Mapping[str, np.ndarray], *,
                  extra: Mapping[str, tuple[int, ...]] | None = None) -> None:
        """Restore ``state()``'s output; exact names and shapes, else WeightsError (as for
        weights: a checkpoint that does not fit). ``extra``: entries the caller restores
        itself (the fp16 loss scale), checked here with the rest."""
        step = check_optimizer_state(
            state, {k: tuple(v.shape) for k, v in self.slot_vars.items()} | dict(extra or {}),
            f"this {self.config.kind} optimizer")
        self.step.assign(step)
        for k, var in self.slot_vars.items():
            var.assign(np.asarray(state[k], dtype=np.float32))


class SGD(Optimizer):
    """w -= lr g."""

    def _update(self, name: str, var: tf.Variable, grad: tf.Tensor,
                lr: tf.Tensor | float) -> None:
        var.assign_sub(lr * grad)


class Momentum(Optimizer):
    """TF1 momentum: a = mu a + g; w -= lr a (Nesterov: w -= lr (g + mu a))."""

    slots = ("accum",)

    def _update(self, name: str, var: tf.Variable, grad: tf.Tensor,
                lr: tf.Tensor | float) -> None:
        mu = self.config.momentum
        accum = self.slot_vars[f"accum/{name}"]
        a = accum.assign(mu * accum + grad)
        var.assign_sub(lr * (grad + mu * a) if self.config.nesterov else lr * a)


class Adam(Optimizer):
    """TF1 Adam (epsilon-hat form): t = step + 1; lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);
    m += (g - m) (1 - b1); v += (g^2 - v) (1 - b2) (TF1 ApplyAdam's form);
    w -= lr_t m / (sqrt(v) + eps)."""

    slots = ("m", "v")

    def _learning_rate(self) -> tf.Tensor:
        c = self.config
        t = tf.cast(self.step + 1, tf.float64)  # bias correction in float64, then rounded
        lr_t = c.learning_rate * tf.sqrt(1.0 - tf.pow(tf.constant(c.beta2, tf.float64), t))
        return tf.cast(lr_t / (1.0 - tf.pow(tf.constant(c.beta1, tf.float64), t)), tf.float32)

    def _update(self, name: str, var: tf.Variable, grad: tf.Tensor,
                lr: tf.Tensor | float) -> None:
        c = self.config
        m = self.slot_vars[f"m/{name}"]
        v = self.slot_vars[f"v/{name}"]
        m_t = m.assign_add((grad - m) * (1.0 - c.beta1))
        v_t = v.assign_add((tf.square(grad) - v) * (1.0 - c.beta2))
        var.assign_sub(lr * m_t / (tf.sqrt(v_t) + c.epsilon))


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(config: Any, params: Params) -> Optimizer:
    """The optimizer the spec's ``train.optimizer`` describes, over ``params``."""
    try:
        cls = OPTIMIZERS[config.kind]
    except KeyError:
        raise BackendError(f"the TensorFlow backend has no {config.kind!r} optimizer") from None
    return cls(config, params)
