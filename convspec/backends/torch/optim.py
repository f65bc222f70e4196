"""The documented optimizers (TF1 Adam, SGD, TF1 momentum), over all parameters at once.

Not ``torch.optim``: its Adam adds epsilon to the bias-corrected sqrt(v_hat) and its momentum
buffer differs from TF1's accumulator. Each update is a handful of ``torch._foreach_*`` ops
over the whole parameter list. The step count lives on the host, so the bias-corrected step
size is a Python float and no update ever waits for the device.

Slots hold tensors in torch layout (like the parameters); ``compiled.py`` converts them to
the canonical layout for ``optimizer_state``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

import torch

Tensors = Sequence[torch.Tensor]


class Optimizer(abc.ABC):
    """Base: the step count and the per-parameter slot tensors."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, params: Tensors, config: Any):
        self.config = config
        self.step = 0  # updates applied so far
        self.slots: dict[str, list[torch.Tensor]] = {
            name: [torch.zeros_like(p, memory_format=torch.contiguous_format) for p in params]
            for name in self.slot_names}

    @torch.no_grad()
    def update(self, params: Tensors, grads: Tensors) -> None:
        """Apply one step in place; ``grads`` line up with ``params``."""
        self.step += 1
        self._apply(list(params), list(grads))

    @abc.abstractmethod
    def _apply(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        """The update rule, in place on ``params``."""


class SGD(Optimizer):
    """w -= lr g."""

    def _apply(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        torch._foreach_add_(params, grads, alpha=-self.config.learning_rate)


class Momentum(Optimizer):
    """TF1: a = mu a + g; w -= lr a (Nesterov: w -= lr (g + mu a))."""

    slot_names = ("accum",)

    def _apply(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        lr, mu = self.config.learning_rate, self.config.momentum
        accum = self.slots["accum"]
        torch._foreach_mul_(accum, mu)
        torch._foreach_add_(accum, grads)
        step = torch._foreach_add(grads, accum, alpha=mu) if self.config.nesterov else accum
        torch._foreach_add_(params, step, alpha=-lr)


class Adam(Optimizer):
    """TF1: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); m += (g - m) (1 - b1);
    v += (g^2 - v) (1 - b2); w -= lr_t m / (sqrt(v) + eps). ``lerp`` with a weight below
    0.5 computes exactly ``m + w (g - m)``, the form of TF1's ApplyAdam kernel."""

    slot_names = ("m", "v")

    def _apply(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        c = self.config
        b1, b2, t = c.beta1, c.beta2, self.step
        lr_t = c.learning_rate * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        m, v = self.slots["m"], self.slots["v"]
        torch._foreach_lerp_(m, grads, 1.0 - b1)
        torch._foreach_lerp_(v, torch._foreach_mul(grads, grads), 1.0 - b2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, c.epsilon)
        torch._foreach_addcdiv_(params, m, denom, value=-lr_t)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(config: Any, params: Tensors) -> Optimizer:
    """The optimizer described by ``spec.train.optimizer``."""
    return OPTIMIZERS[config.kind](params, config)
