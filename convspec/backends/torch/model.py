"""``TorchModel``: the torch part of ``BaseModel`` (``base.py`` holds the rest).

NumPy arrays arrive checked and in canonical layout (NHWC images, HWIO kernels, H-W-C flat
order); inside, everything is torch-native (``layout.py`` converts at the edge). Inputs are
wrapped with ``torch.from_numpy`` (no copy on CPU beyond what the layout needs) and results
leave the device only when a caller asks for them (``fetch``, ``predict``, ...), so a
training loop never syncs per step.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ...distributed import Parallel
from ...specification import Spec
from ..base import BaseModel
from .devices import (
    all_reduce,
    broadcast,
    data_parallel,
    join_process_group,
    leave_process_group,
    resolve_device,
)
from .network import Network
from .ops import EVAL, Mode, accuracy, cross_entropy
from .optimizers import make_optimizer
from .precision import COMPUTE_DTYPES, LossScale, ieee, ieee_settings


def _tensor(array: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without its warning for read-only arrays (memory maps)."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


class TorchModel(BaseModel):
    """A spec compiled by the PyTorch backend (see ``convspec.backends.CompiledModel``)."""

    backend = "torch"

    def __init__(self, spec: Spec, *, weights: Mapping[str, np.ndarray] | None = None,
                 device: str = "cpu", parallel: Parallel | None = None,
                 precision: str = "fp32", jit: bool = False):
        super().__init__(spec, parallel=parallel, precision=precision, jit=jit)
        initial = self.initial_weights(weights)
        self._device = resolve_device(device, self.parallel.local_rank)
        self.device = self._device.type
        if self.parallel.enabled:
            self.parallel.check_batch(spec.train.batch_size)
            join_process_group(self._device, self.parallel)
        self.net = Network(spec).to(self._device)
        weights_by_name = self.net.weights
        self.optimizer = make_optimizer(spec.train.optimizer,
                                        [(name, weights_by_name[name]) for name in self.trainable],
                                        self.regularization)
        self.loss_scale = LossScale() if precision == "fp16" else None
        self._half = COMPUTE_DTYPES[precision]
        self._ieee = ieee_settings(self._device)
        self.set_weights(initial)
        self.ddp: Any = None
        if self.parallel.enabled:  # after the weights: DDP starts from rank 0's copy
            self.ddp = data_parallel(self.net, self._device)
        self._train_net: Any = self.ddp if self.ddp is not None else self.net
        if jit:  # compiled on the first training step (fixed batch shape, no recompiles)
            self._train_net = torch.compile(self._train_net, dynamic=False)

    # -- the edge: conversions, modes, precision --------------------------------------------

    def _to_nchw(self, images: np.ndarray) -> torch.Tensor:
        x = _tensor(images).to(self._device, non_blocking=True)
        return x.permute(0, 3, 1, 2).contiguous()  # no copy when C == 1

    def _labels(self, labels: np.ndarray) -> torch.Tensor:
        return _tensor(labels).to(self._device, non_blocking=True)

    @contextmanager
    def _compute(self) -> Iterator[None]:
        """IEEE float32, or autocast to the 16-bit type of a mixed-precision model."""
        with ieee(self._ieee):
            if self._half is None:
                yield
            else:
                with torch.autocast(self._device.type, dtype=self._half):
                    yield

    def _train_mode(self, update_stats: bool, rows: int) -> Mode:
        """Train mode for the coming update: the optimizer step and, under DDP, where this
        rank's ``rows`` start in the global batch (dropout masks)."""
        keys = self.net.dropout_keys(self.optimizer.step)
        if not keys:
            return Mode(training=True, update_stats=update_stats)
        return Mode(training=True, update_stats=update_stats,
                    keys=torch.tensor(keys, dtype=torch.int64, device=self._device),
                    first_row=self.parallel.rank * rows)

    def _forward(self, x: torch.Tensor, mode: Mode,
                 collect: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Float32 logits (the DDP wrapper's in training, so gradients are averaged)."""
        net = self._train_net if mode.training and mode.update_stats else self.net
        return net(x, mode, collect).float()

    # -- weights ----------------------------------------------------------------------------

    def _weight_tensors(self) -> dict[str, torch.Tensor]:
        return self.net.weights

    def _to_numpy(self, name: str, tensor: torch.Tensor) -> np.ndarray:
        return self.net.layouts[name].to_canonical(tensor.detach().cpu().numpy())

    def _from_numpy(self, name: str, array: np.ndarray) -> torch.Tensor:
        return _tensor(np.ascontiguousarray(self.net.layouts[name].from_canonical(array)))

    def _assign(self, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        with torch.no_grad():
            for tensor, value in pairs:
                tensor.copy_(value)

    # -- inference --------------------------------------------------------------------------

    def _predict_batches(self, batches: list[np.ndarray]) -> np.ndarray:
        with torch.inference_mode(), self._compute():
            return torch.cat([self._forward(self._to_nchw(x), EVAL) for x in batches]
                             ).cpu().numpy()

    def _forward_activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        collected: dict[str, torch.Tensor] = {}
        with torch.inference_mode(), self._compute():
            self._forward(self._to_nchw(images), EVAL, collected)
        out = {}
        for name, tensor in collected.items():
            tensor = tensor.float()
            if tensor.dim() == 4:
                tensor = tensor.permute(0, 2, 3, 1)
            array = tensor.cpu().numpy()
            perm = self.net.out_perm[name]
            out[name] = np.ascontiguousarray(array if perm is None else array[:, perm])
        return out

    # -- training ---------------------------------------------------------------------------

    def _loss_and_gradients(self, images: np.ndarray, labels: np.ndarray,
                            training: bool) -> tuple[float, list[torch.Tensor]]:
        x, y = self._to_nchw(images), self._labels(labels)
        mode = self._train_mode(False, len(images)) if training else EVAL
        with self._compute():
            loss = cross_entropy(self.net(x, mode).float(), y)
        with ieee(self._ieee):
            grads = torch.autograd.grad(loss, self.optimizer.params)
        return float(loss.detach()), list(grads)

    def _apply_step(self, images: np.ndarray, labels: np.ndarray, learning_rate: float,
                    fetch: bool) -> tuple[float, float] | None:
        x, y = self._to_nchw(images), self._labels(labels)
        with self._compute():
            logits = self._forward(x, self._train_mode(True, len(images)))
            loss = cross_entropy(logits, y)
        scaled = loss * self.loss_scale.scale if self.loss_scale is not None else loss
        with ieee(self._ieee):
            if self.ddp is None:
                grads = list(torch.autograd.grad(scaled, self.optimizer.params))
            else:  # DDP averages the gradients over ranks while backward runs
                for param in self.optimizer.params:
                    param.grad = None
                scaled.backward()
                grads = [param.grad for param in self.optimizer.params]
            finite = True
            if self.loss_scale is not None:
                grads, finite = self.loss_scale.unscale(grads)
                self.loss_scale.update(finite)
            if finite:
                self.optimizer.update(grads, learning_rate)
        if not fetch:
            return None
        with torch.no_grad():
            values = torch.stack([loss, accuracy(logits, y)])
            if self.ddp is not None:  # the global batch's figures: shards are equal-sized
                all_reduce(values).div_(self.parallel.processes)
            loss_value, accuracy_value = values.tolist()  # one sync
        return loss_value, accuracy_value

    # -- data parallel ----------------------------------------------------------------------

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (e.g. a Ctrl-C seen by one)."""
        if self.ddp is None:
            return flag
        return bool(all_reduce(torch.tensor([int(flag)], device=self._device), "max").item())

    def broadcast(self, values: Sequence[float]) -> list[float]:
        """The primary rank's ``values`` (float64) on every rank."""
        if self.ddp is None:
            return [float(v) for v in values]
        return broadcast(torch.tensor(values, dtype=torch.float64, device=self._device)
                         ).tolist()

    def close(self) -> None:
        """Leave the process group (after the last collective call). DDP's reducer holds the
        group and gloo's pending work: both are released here, while the interpreter is
        whole, not at its exit, where freeing them can abort the process (SIGABRT,
        "terminate called without an active exception", seen under load)."""
        if self.ddp is not None:
            self.ddp = None
            self._train_net = self.net
            gc.collect()
            leave_process_group()
