"""The documented optimizers (TF1 Adam, SGD, TF1 momentum) in TensorFlow, op by op, with
``convspec.regularization``'s L2 term, global-norm clipping and decoupled weight decay.

Not Keras optimizers: their defaults (epsilon 1e-7, iteration counters, variable naming) are
not the spec's, and the canonical state (``step``, ``m/<w>``, ``v/<w>``, ``accum/<w>``) must
map one-to-one onto variables so state moves between backends exactly. The formulas are
spelled out op by op, with constants such as ``1 - beta2`` computed in float64 and rounded
once, i.e. the same float32 arithmetic as the PyTorch backend; except Adam, which runs TF's
fused ``ResourceApplyAdam`` kernel given compensated constants (see ``Adam``: the kernel as
it stands computes ``1 - beta2`` in float32, 1.3e-5 off for 0.999, a slightly different
Adam that drifted 2e-4 (relative) from PyTorch in 50 MNIST steps).

The API is the torch backend's: ``Optimizer(config, params)`` over (name, variable) pairs;
``slot_names``; ``slots`` (slot name -> one variable per weight); ``step`` (updates applied,
read and set as a Python int; the int64 variable ``iterations`` holds it in the graph);
``update(grads, learning_rate)`` with the learning rate computed outside (the trainer's
schedule, or ``BaseModel.learning_rate``; a float64 tensor here, an argument of the traced
step); ``state()`` (slot variables by ``<slot>/<weight name>``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from ...errors import BackendError
from ...regularization import Regularization

Params = Sequence[tuple[str, tf.Variable]]


class Optimizer(tf.Module, metaclass=abc.ABCMeta):
    """Base: the step count and zero-initialised slots per weight."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, config: Any, params: Params,
                 regularization: Regularization | None = None):
        super().__init__(name=f"convspec_{config.kind}")
        self.config = config
        self.regularization = regularization or Regularization()
        self.names = [name for name, _ in params]
        self.params = [variable for _, variable in params]
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.slots: dict[str, list[tf.Variable]] = {
            slot: [tf.Variable(tf.zeros_like(var), trainable=False, name=f"{slot}/{name}")
                   for name, var in params]
            for slot in self.slot_names}

    @property
    def step(self) -> int:
        """Updates applied so far (reads the variable: call outside the training loop)."""
        return int(self.iterations.numpy())

    @step.setter
    def step(self, value: int) -> None:
        self.iterations.assign(value)

    def update(self, grads: Sequence[tf.Tensor], learning_rate: tf.Tensor) -> None:
        """One update of every weight with the loss's ``grads`` (in weight order; call inside
        a tf.function): L2 term, clipping, weight decay, the rule
        (``convspec.regularization``); then step += 1."""
        grads = self._clipped(self._penalized(list(grads)))
        lr = self._learning_rate(learning_rate)
        r = self.regularization
        decay = (tf.cast(r.decay_factor(learning_rate), tf.float32) if r.weight_decay
                 else None)
        for index, (param, grad) in enumerate(zip(self.params, grads, strict=True)):
            if decay is not None:
                param.assign(param * decay)
            self._apply(index, grad, lr)
        self.iterations.assign_add(1)

    def _penalized(self, grads: list[tf.Tensor]) -> list[tf.Tensor]:
        """``g + 2 l2 w`` for the kernels L2 covers, the others unchanged."""
        r = self.regularization
        for i in r.penalized:
            grads[i] = grads[i] + tf.constant(2.0 * r.l2, tf.float32) * self.params[i]
        return grads

    def _clipped(self, grads: list[tf.Tensor]) -> list[tf.Tensor]:
        """Every gradient times ``clip_norm / max(global norm, clip_norm)``."""
        clip = self.regularization.clip_norm
        if clip is None:
            return grads
        return tf.clip_by_global_norm(grads, clip)[0]

    def _learning_rate(self, learning_rate: tf.Tensor) -> tf.Tensor:
        """The step size of this update from the float64 learning rate (float32)."""
        return tf.cast(learning_rate, tf.float32)

    @abc.abstractmethod
    def _apply(self, index: int, grad: tf.Tensor, lr: tf.Tensor) -> None:
        """The update rule for weight number ``index`` (and its slots)."""

    def state(self) -> dict[str, tf.Variable]:
        return {f"{slot}/{name}": variable for slot in self.slot_names
                for name, variable in zip(self.names, self.slots[slot], strict=True)}


class SGD(Optimizer):
    """w -= lr g."""

    def _apply(self, index: int, grad: tf.Tensor, lr: tf.Tensor) -> None:
        self.params[index].assign_sub(lr * grad)


class Momentum(Optimizer):
    """TF1 momentum: a = mu a + g; w -= lr a (Nesterov: w -= lr (g + mu a))."""

    slot_names = ("accum",)

    def _apply(self, index: int, grad: tf.Tensor, lr: tf.Tensor) -> None:
        mu = self.config.momentum
        accum = self.slots["accum"][index]
        a = accum.assign(mu * accum + grad)
        step = lr * (grad + mu * a) if self.config.nesterov else lr * a
        self.params[index].assign_sub(step)


class Adam(Optimizer):
    """TF1 Adam (epsilon-hat form): t = step + 1; lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);
    m += (g - m) (1 - b1); v += (g^2 - v) (1 - b2) (TF1 ApplyAdam's form);
    w -= lr_t m / (sqrt(v) + eps).

    ``fused`` (the default, except under a distribution strategy, whose mirrored variables
    need their own assignments, and in fp16, see below): TF's ``ResourceApplyAdam`` kernel,
    the tutorial's own optimizer, one kernel per weight instead of nine ops. It forms
    ``1 - beta`` in float32 (``c1``, ``c2``: 0.10000002 and 0.00099998713 for 0.9 and 0.999,
    against the spec's 0.1 and 0.001), so its moments are the spec's times
    ``k1 = c1 / (1 - b1)``, ``k2 = c2 / (1 - b2)`` (1 + 2.4e-7 and 1 - 1.3e-5 here); given
    ``lr_t sqrt(k2) / k1`` for its learning rate, ``eps sqrt(k2)`` for its epsilon and beta
    powers 0 (its bias correction is then the identity; ``lr_t`` stays float64 from the
    step), its update is the spec's update (``benchmarks/README.md``, issue 15). The slots
    are kept and exported as the kernel holds them (exactly TF1 ``AdamOptimizer``'s slots):
    a rescaling in ``optimizer_state`` cannot be undone exactly in float32, and resuming
    must be bit-exact. So the exported ``v`` is the spec's times ``k2`` (1.3e-5 relative for
    0.999, inside the parity tests' tolerance); a state moved between backends changes the
    next updates by about ``(1 - k2) / 2``.
    Not in fp16: both forms agree to 1e-8 per step, but 40 fp16 steps amplify that to 1e-2
    (``tests/test_precision.py``'s graph network: 101% of its logit tolerance fused, 70% with
    the ops), and fp16 is a GPU feature whose update is a small part of the step.
    """

    slot_names = ("m", "v")

    def __init__(self, config: Any, params: Params,
                 regularization: Regularization | None = None, fused: bool = True):
        super().__init__(config, params, regularization)
        self.fused = fused
        f32 = np.float32
        self.k1 = float(f32(1) - f32(config.beta1)) / (1.0 - config.beta1)
        self.k2 = float(f32(1) - f32(config.beta2)) / (1.0 - config.beta2)

    def _learning_rate(self, learning_rate: tf.Tensor) -> tf.Tensor:
        c = self.config
        t = tf.cast(self.iterations + 1, tf.float64)  # bias correction in float64, then rounded
        lr_t = learning_rate * tf.sqrt(1.0 - tf.pow(tf.constant(c.beta2, tf.float64), t))
        lr_t = lr_t / (1.0 - tf.pow(tf.constant(c.beta1, tf.float64), t))
        if self.fused:
            lr_t = lr_t * (np.sqrt(self.k2) / self.k1)
        return tf.cast(lr_t, tf.float32)

    def _apply(self, index: int, grad: tf.Tensor, lr: tf.Tensor) -> None:
        c = self.config
        m, v = self.slots["m"][index], self.slots["v"][index]
        if self.fused:
            tf.raw_ops.ResourceApplyAdam(
                var=self.params[index].handle, m=m.handle, v=v.handle,
                beta1_power=tf.constant(0.0, tf.float32), beta2_power=tf.constant(0.0, tf.float32),
                lr=lr, beta1=tf.constant(c.beta1, tf.float32),
                beta2=tf.constant(c.beta2, tf.float32),
                epsilon=tf.constant(c.epsilon * np.sqrt(self.k2), tf.float32), grad=grad)
            return
        m_t = m.assign_add((grad - m) * (1.0 - c.beta1))
        v_t = v.assign_add((tf.square(grad) - v) * (1.0 - c.beta2))
        self.params[index].assign_sub(lr * m_t / (tf.sqrt(v_t) + c.epsilon))


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(config: Any, params: Params,
                   regularization: Regularization | None = None, *,
                   fused: bool = True) -> Optimizer:
    """The optimizer the spec's ``train.optimizer`` describes, over ``params``, with the
    spec's ``regularization``; ``fused``: Adam through TF's fused kernel (not under a
    distribution strategy)."""
    try:
        cls = OPTIMIZERS[config.kind]
    except KeyError:
        raise BackendError(f"the TensorFlow backend has no {config.kind!r} optimizer") from None
    if cls is Adam:
        return Adam(config, params, regularization, fused=fused)
    return cls(config, params, regularization)
