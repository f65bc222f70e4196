"""Regularisation with one meaning for every backend: L2, gradient clipping, weight decay.

Each optimizer update (``Optimizer.update(grads, lr)`` in every backend, ``lr`` the step's
scheduled rate) turns the cross-entropy's gradients ``g`` into the applied update in this
order, the order of Keras (penalty in the loss, clipping and decay in the optimizer) and of a
PyTorch loop with ``clip_grad_norm_`` and ``AdamW``:

1. **L2** (``train.l2``, Keras ``kernel_regularizer=L2(l2)``): the objective gains
   ``l2 * sum(k ** 2)`` over every kernel ``k`` (the ``kernel`` weights of conv2d,
   depthwise_conv2d and dense layers; not biases or batch-norm parameters), so
   ``g_k += 2 * l2 * k``. The logged losses stay the cross-entropy alone, comparable with the
   validation loss and with runs without L2.
2. **Clipping** (``train.clip_norm``, ``tf.clip_by_global_norm`` /
   ``torch.nn.utils.clip_grad_norm_``): ``n = sqrt(sum over every trainable gradient of
   sum(g ** 2))``, computed once over all of them (after averaging over replicas and, under
   fp16, after unscaling); every ``g *= clip_norm / max(n, clip_norm)``. PyTorch divides by
   ``n + 1e-6`` instead: a relative difference of ``1e-6 / n``.
3. **Decoupled weight decay** (``train.optimizer.weight_decay``, Loshchilov & Hutter; PyTorch
   ``AdamW`` and Keras 3's ``weight_decay``): every trainable weight ``w *= 1 - lr *
   weight_decay`` before the optimizer's rule, with the scheduled ``lr`` (not Adam's
   bias-corrected step size), as both frameworks do. The factor is computed in float64 and
   rounded to float32 once, so every backend multiplies by the same number.
4. The optimizer's rule (Adam, SGD, momentum) with the resulting gradients.

A skipped fp16 step (non-finite gradients) applies none of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .specification import Spec

KERNEL_SLOT = "kernel"


def penalized_names(spec: Spec) -> list[str]:
    """Canonical names of the weights the L2 penalty covers: every trainable kernel, in the
    spec's order of weights."""
    return [name for name, slot in spec.table.weights.items()
            if slot.trainable and name.rsplit("/", 1)[-1] == KERNEL_SLOT]


@dataclass(frozen=True)
class Regularization:
    """A spec's regularisation, ready for an optimizer over its trainable weights.

    ``penalized``: the positions, in the trainable weights' order, of the kernels L2 covers
    (empty when ``l2`` is 0); ``clip_norm``: None for no clipping.
    """

    l2: float = 0.0
    penalized: tuple[int, ...] = ()
    clip_norm: float | None = None
    weight_decay: float = 0.0

    @classmethod
    def from_spec(cls, spec: Spec, trainable: list[str]) -> Regularization:
        t = spec.train
        kernels = set(penalized_names(spec))
        penalized = tuple(i for i, name in enumerate(trainable) if name in kernels)
        return cls(l2=float(t.l2), penalized=penalized if t.l2 else (),
                   clip_norm=None if t.clip_norm is None else float(t.clip_norm),
                   weight_decay=float(t.optimizer.weight_decay))

    def decay_factor(self, learning_rate: float) -> float:
        """``1 - learning_rate * weight_decay`` in float64 (each backend rounds it once)."""
        return 1.0 - learning_rate * self.weight_decay


def features_used(spec: Spec) -> dict[str, list[str]]:
    """The regularisation features ``spec`` uses -> the fields that ask for them (for
    ``convspec.backends.support``)."""
    t = spec.train
    used = {"weight_decay": ["train.optimizer.weight_decay"] if t.optimizer.weight_decay else [],
            "l2": ["train.l2"] if t.l2 else [],
            "clip_norm": ["train.clip_norm"] if t.clip_norm is not None else []}
    return {feature: fields for feature, fields in used.items() if fields}
