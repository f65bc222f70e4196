"""The documented optimizers (TF1 Adam, SGD, TF1 momentum) in torch, over all weights at once,
with ``convspec.regularization``'s L2 term, global-norm clipping and decoupled weight decay.

Not ``torch.optim``: its Adam adds epsilon to the bias-corrected sqrt(v_hat) and its momentum
buffer differs from TF1's accumulator. Each update is a handful of ``torch._foreach_*`` ops
over the whole weight list. The step count lives on the host, so the bias-corrected step size
is a Python float and no update ever waits for the device.

The API is the TensorFlow backend's: ``Optimizer(config, params)`` over (name, tensor) pairs;
``slot_names``; ``slots`` (slot name -> one tensor per weight, in the weights' layout);
``step`` (updates applied, a Python int); ``update(grads, learning_rate)`` with the learning
rate computed outside (the trainer's schedule, or ``BaseModel.learning_rate``); ``state()``
(slot tensors by ``<slot>/<weight name>``).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

import torch

from ...errors import BackendError
from ...regularization import Regularization

Params = Sequence[tuple[str, torch.Tensor]]


class Optimizer(abc.ABC):
    """Base: the step count and zero-initialised slots per weight."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, config: Any, params: Params,
                 regularization: Regularization | None = None):
        self.config = config
        self.regularization = regularization or Regularization()
        self.names = [name for name, _ in params]
        self.params = [tensor for _, tensor in params]
        self.step = 0  # updates applied so far
        self.slots: dict[str, list[torch.Tensor]] = {
            slot: [torch.zeros_like(p, memory_format=torch.contiguous_format)
                   for p in self.params]
            for slot in self.slot_names}

    @torch.no_grad()
    def update(self, grads: Sequence[torch.Tensor], learning_rate: float) -> None:
        """One update of every weight with the loss's ``grads`` (in weight order): L2 term,
        clipping, weight decay, the rule (``convspec.regularization``); then step += 1."""
        grads = self._clipped(self._penalized(list(grads)))
        self.step += 1
        r = self.regularization
        if r.weight_decay:
            torch._foreach_mul_(self.params, r.decay_factor(learning_rate))
        self._apply(grads, self._learning_rate(learning_rate))

    def _penalized(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """``g + 2 l2 w`` for the kernels L2 covers (new tensors), the others unchanged."""
        r = self.regularization
        if not r.penalized:
            return grads
        index = list(r.penalized)
        summed = torch._foreach_add([grads[i] for i in index], [self.params[i] for i in index],
                                    alpha=2.0 * r.l2)
        for i, grad in zip(index, summed, strict=True):
            grads[i] = grad
        return grads

    def _clipped(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every gradient times ``clip_norm / max(global norm, clip_norm)`` (no host sync)."""
        clip = self.regularization.clip_norm
        if clip is None:
            return grads
        norm = torch.nn.utils.get_total_norm(grads, 2.0)
        scale = clip / torch.clamp(norm, min=clip)
        return torch._foreach_mul(grads, scale)

    def _learning_rate(self, learning_rate: float) -> float:
        """The step size of this update from the learning rate."""
        return learning_rate

    @abc.abstractmethod
    def _apply(self, grads: list[torch.Tensor], lr: float) -> None:
        """The update rule, in place on ``self.params`` and the slots."""

    def state(self) -> dict[str, torch.Tensor]:
        return {f"{slot}/{name}": tensor for slot in self.slot_names
                for name, tensor in zip(self.names, self.slots[slot], strict=True)}


class SGD(Optimizer):
    """w -= lr g."""

    def _apply(self, grads: list[torch.Tensor], lr: float) -> None:
        torch._foreach_add_(self.params, grads, alpha=-lr)


class Momentum(Optimizer):
    """TF1 momentum: a = mu a + g; w -= lr a (Nesterov: w -= lr (g + mu a))."""

    slot_names = ("accum",)

    def _apply(self, grads: list[torch.Tensor], lr: float) -> None:
        mu = self.config.momentum
        accum = self.slots["accum"]
        torch._foreach_mul_(accum, mu)
        torch._foreach_add_(accum, grads)
        step = torch._foreach_add(grads, accum, alpha=mu) if self.config.nesterov else accum
        torch._foreach_add_(self.params, step, alpha=-lr)


class Adam(Optimizer):
    """TF1 Adam (epsilon-hat form): t = step + 1; lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);
    m += (g - m) (1 - b1); v += (g^2 - v) (1 - b2) (TF1 ApplyAdam's form);
    w -= lr_t m / (sqrt(v) + eps).

    On CPU and CUDA one fused kernel updates every tensor (``torch._fused_adam_``, the kernel
    of ``torch.optim.Adam(fused=True)``; 3.5% of the MNIST training step on CPU,
    ``benchmarks/README.md``). It adds epsilon after the bias correction,
    ``w -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps')``, which is the form above
    for ``eps' = eps / sqrt(1 - b2^t)``, given per step. Its moments are the same ``m``,
    ``v`` (float32 rounding apart), so the optimizer state needs no conversion. Elsewhere
    (``fused=False``, other devices) ``torch._foreach_*`` ops: ``lerp`` with a weight below 0.5
    computes exactly ``m + w (g - m)``."""

    slot_names = ("m", "v")

    def __init__(self, config: Any, params: Params,
                 regularization: Regularization | None = None, fused: bool | None = None):
        super().__init__(config, params, regularization)
        if fused is None:
            fused = hasattr(torch, "_fused_adam_") and all(
                p.device.type in ("cpu", "cuda") and p.dtype == torch.float32
                and p.is_contiguous() for p in self.params)
        self.fused = fused
        # the kernel reads t from a float32 tensor per weight (torch.optim's state "step"),
        # only reads it: one tensor per device, set before each update
        devices = {p.device: torch.zeros((), dtype=torch.float32, device=p.device)
                   for p in self.params} if fused else {}
        self._steps = [devices[p.device] for p in self.params] if fused else []

    def _learning_rate(self, learning_rate: float) -> float:
        c, t = self.config, self.step  # bias correction in float64
        return learning_rate * math.sqrt(1.0 - c.beta2 ** t) / (1.0 - c.beta1 ** t)

    def _apply(self, grads: list[torch.Tensor], lr: float) -> None:
        if self.fused:
            self._fused_apply(grads, lr)
            return
        c = self.config
        b1, b2 = c.beta1, c.beta2
        m, v = self.slots["m"], self.slots["v"]
        torch._foreach_lerp_(m, grads, 1.0 - b1)
        torch._foreach_lerp_(v, torch._foreach_mul(grads, grads), 1.0 - b2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, c.epsilon)
        torch._foreach_addcdiv_(self.params, m, denom, value=-lr)

    def _fused_apply(self, grads: list[torch.Tensor], lr_t: float) -> None:
        """The update through the fused kernel: its ``lr / (1 - b1^t)`` and
        ``sqrt(1 - b2^t)`` scaling of epsilon made to give ``lr_t`` and ``eps``."""
        c, t = self.config, self.step
        correction1, root2 = 1.0 - c.beta1 ** t, math.sqrt(1.0 - c.beta2 ** t)
        for step in set(self._steps):
            step.fill_(float(t))
        # the kernel walks every tensor's memory in its parameter's order: a gradient in
        # another memory format (autograd gives some convolution kernels channels-last)
        # must be made contiguous like the parameter
        grads = [g if g.is_contiguous() else g.contiguous() for g in grads]
        torch._fused_adam_(self.params, grads, self.slots["m"], self.slots["v"], [],
                           self._steps, amsgrad=False, lr=lr_t * correction1 / root2,
                           beta1=c.beta1, beta2=c.beta2, weight_decay=0.0,
                           eps=c.epsilon / root2, maximize=False)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(config: Any, params: Params,
                   regularization: Regularization | None = None) -> Optimizer:
    """The optimizer the spec's ``train.optimizer`` describes, over ``params``, with the
    spec's ``regularization``."""
    try:
        cls = OPTIMIZERS[config.kind]
    except KeyError:
        raise BackendError(f"the torch backend has no {config.kind!r} optimizer") from None
    return cls(config, params, regularization)
