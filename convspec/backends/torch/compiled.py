"""``TorchModel``: the ``CompiledModel`` protocol over ``Net``, converting layouts at the edge.

NumPy arrays cross the boundary in canonical layout (NHWC images, HWIO kernels, H-W-C flat
order); inside, everything is torch-native. Inputs are wrapped with ``torch.from_numpy``
(no copy on CPU beyond what the layout needs) and results leave the device only when a
caller asks for them (``fetch``, ``predict``, ...), so a training loop never syncs per step.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...distributed import SINGLE, Parallel
from ...errors import BackendError, WeightsError
from ...precision import (
    GOOD_STEPS_KEY,
    INITIAL_SCALE,
    SCALE_KEY,
    check_precision,
    loss_scale_state,
    next_loss_scale,
)
from ...specification import Spec
from ...weights import (
    check_optimizer_state,
    check_weights,
    init_weights,
    trainable_names,
    weight_shapes,
)
from .. import StepResult, check_device
from .model import EVAL, Mode, Net
from .optim import make_optimizer

_DROPOUT_STREAM = zlib.crc32(b"dropout")


def dropout_seed(seed: int, step: int, rank: int = 0) -> int:
    """64-bit seed of the dropout masks for the update that takes ``step`` to ``step + 1``.

    A pure function of (train seed, optimizer step[, rank]), so a resumed run draws the same
    masks; each rank of a distributed run draws its own.
    """
    entropy = [seed, _DROPOUT_STREAM, step] + ([rank] if rank else [])
    words = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return int(words[0]) | int(words[1]) << 32


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """cpu, or the CUDA device of this process (``cuda:LOCAL_RANK`` under torchrun)."""
    check_device(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendError("device 'cuda' was requested but this PyTorch build sees no CUDA "
                           f"GPU (torch {torch.__version__}); use --device cpu or auto")
    if device == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise BackendError(f"local rank {local_rank} has no GPU of its own (this host has "
                               f"{torch.cuda.device_count()}); start at most that many "
                               f"processes per node")
        return torch.device("cuda", local_rank)
    return torch.device(device)


def _join_process_group(device: torch.device, parallel: Parallel) -> None:
    """Join torchrun's process group (env://): NCCL between GPUs, gloo on CPU."""
    import torch.distributed as dist

    if not dist.is_available():
        raise BackendError("this PyTorch build has no torch.distributed; cannot train on "
                           f"{parallel.processes} processes")
    if dist.is_initialized():
        if dist.get_world_size() != parallel.processes:
            raise BackendError(f"a process group of {dist.get_world_size()} is already "
                               f"running, not the {parallel.processes} expected")
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _precision_knobs(device: torch.device) -> list[tuple[Any, str, Any]]:
    """(object, attribute, value) settings that keep float32 math IEEE (no TF32/bf16)."""
    b = torch.backends
    if device.type == "cuda":
        if hasattr(getattr(b.cudnn, "conv", None), "fp32_precision"):
            return [(b.cudnn.conv, "fp32_precision", "ieee"),
                    (b.cuda.matmul, "fp32_precision", "ieee")]
        return [(b.cudnn, "allow_tf32", False), (b.cuda.matmul, "allow_tf32", False)]
    if hasattr(getattr(b.mkldnn, "matmul", None), "fp32_precision"):
        return [(b.mkldnn.conv, "fp32_precision", "ieee"),
                (b.mkldnn.matmul, "fp32_precision", "ieee")]
    return []


def _tensor(array: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without its warning for read-only arrays (memory maps)."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


class TorchModel:
    """A spec compiled by the PyTorch backend (see ``convspec.backends.CompiledModel``)."""

    backend = "torch"

    def __init__(self, spec: Spec, *, weights: Mapping[str, np.ndarray] | None = None,
                 device: str = "cpu", parallel: Parallel | None = None,
                 precision: str = "fp32", jit: bool = False):
        self.spec = spec
        self.jit = jit
        self.precision = check_precision(precision)
        self._half = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.loss_scale, self.good_steps = INITIAL_SCALE, 0
        self.parallel = parallel or SINGLE
        if self.parallel.local_devices != 1:
            raise BackendError("the torch backend runs one device per process; start one "
                               "process per device with torchrun (convspec train --nproc N)")
        self._device = resolve_device(device, self.parallel.local_rank)
        self.device = self._device.type
        if self.parallel.enabled:
            self.parallel.check_batch(spec.train.batch_size)
            _join_process_group(self._device, self.parallel)
        self.net = Net(spec).to(self._device)
        self._shape = (spec.input.height, spec.input.width, spec.input.channels)
        self._trainable = trainable_names(spec)
        self._params = [self.net.slots[n].tensor for n in self._trainable]
        self.optimizer = make_optimizer(spec.train.optimizer, self._params)
        self._generator = (torch.Generator(device=self._device) if self.net.has_dropout
                           else None)
        self._knobs = _precision_knobs(self._device)
        self.set_weights(init_weights(spec) if weights is None else weights)
        self.ddp: Any = None
        if self.parallel.enabled:  # after the weights: DDP starts from rank 0's copy
            import warnings

            from torch.nn.parallel import DistributedDataParallel

            # A kernel with one input channel: its gradient and DDP's bucket view differ
            # only in the stride of a size-1 dimension (same memory order); the copy this
            # warning is about costs a few hundred floats per step.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
            self.ddp = DistributedDataParallel(
                self.net, device_ids=[self._device.index] if self.device == "cuda" else None,
                forward_sync_buffers=False, gradient_as_bucket_view=True)
        self._train_net: Any = self.ddp if self.ddp is not None else self.net
        if jit:  # compiled on the first training step (fixed batch shape, no recompiles)
            self._train_net = torch.compile(self._train_net, dynamic=False)

    def __repr__(self) -> str:
        jit = ", jit=True" if self.jit else ""
        return f"TorchModel(spec={self.spec.name!r}, device={self.device!r}{jit})"

    # -- edge conversions -------------------------------------------------------------------

    @contextmanager
    def _ieee(self) -> Iterator[None]:
        """Full float32 precision for this call only; the user's global settings come back."""
        saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in self._knobs]
        try:
            for obj, attr, value in self._knobs:
                setattr(obj, attr, value)
            yield
        finally:
            for obj, attr, value in saved:
                setattr(obj, attr, value)

    def _images(self, images: np.ndarray) -> np.ndarray:
        array = np.asarray(images)
        if array.ndim != 4 or array.shape[1:] != self._shape:
            h, w, c = self._shape
            raise BackendError(f"spec {self.spec.name!r} takes NHWC images of shape "
                               f"(N, {h}, {w}, {c}); got an array of shape {array.shape}")
        return np.ascontiguousarray(array, dtype=np.float32)

    def _to_nchw(self, array: np.ndarray) -> torch.Tensor:
        x = _tensor(array).to(self._device, non_blocking=True)
        return x.permute(0, 3, 1, 2).contiguous()  # no copy when C == 1

    def _labels(self, labels: np.ndarray, n: int) -> torch.Tensor:
        array = np.asarray(labels)
        if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
            raise BackendError(f"labels must be {n} integers (one per image); got "
                               f"{array.dtype} array of shape {array.shape}")
        if n and (array.min() < 0 or array.max() >= self.spec.classes):
            raise BackendError(f"labels must be in [0, {self.spec.classes}); got values from "
                               f"{array.min()} to {array.max()}")
        return _tensor(array.astype(np.int64, copy=False)).to(self._device, non_blocking=True)

    def _canonical(self, name: str, tensor: torch.Tensor) -> np.ndarray:
        array = self.net.slots[name].to_canonical(tensor.detach().cpu().numpy())
        return np.array(array, dtype=np.float32, order="C", copy=True)  # never alias a param

    @contextmanager
    def _compute(self) -> Iterator[None]:
        """IEEE float32, or autocast to the 16-bit type of a mixed-precision model."""
        with self._ieee():
            if self._half is None:
                yield
            else:
                with torch.autocast(self._device.type, dtype=self._half):
                    yield

    def _forward(self, x: torch.Tensor, mode: Mode,
                 collect: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Float32 logits (the DDP wrapper's in training, so gradients are averaged)."""
        net = self._train_net if mode.training and mode.update_stats else self.net
        return net(x, mode, collect).float()

    def _train_mode(self, update_stats: bool) -> Mode:
        """Train mode whose dropout masks are those of the next optimizer step."""
        if self._generator is not None:
            self._generator.manual_seed(dropout_seed(self.spec.train.seed, self.optimizer.step,
                                                     self.parallel.rank))
        return Mode(training=True, update_stats=update_stats, generator=self._generator)

    # -- weights ----------------------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: self._canonical(name, slot.tensor) for name, slot in self.net.slots.items()}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        if not isinstance(weights, Mapping):
            raise WeightsError(f"weights must be a mapping of name -> array, not "
                               f"{type(weights).__name__}")
        arrays = {name: np.asarray(value) for name, value in weights.items()}
        check_weights(self.spec, arrays)
        converted = {name: _tensor(np.ascontiguousarray(
                         slot.from_canonical(arrays[name].astype(np.float32, copy=False))))
                     for name, slot in self.net.slots.items()}  # all converted before any copy
        with torch.no_grad():
            for name, slot in self.net.slots.items():
                slot.tensor.copy_(converted[name])

    # -- inference --------------------------------------------------------------------------

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Logits in eval mode, ``batch_size`` (default: spec eval_batch_size) at a time."""
        array = self._images(images)
        size = batch_size or self.spec.train.eval_batch_size
        if size <= 0:
            raise BackendError(f"batch_size must be positive, got {size}")
        if not len(array):
            return np.zeros((0, self.spec.classes), dtype=np.float32)
        with torch.inference_mode(), self._compute():
            out = [self._forward(self._to_nchw(array[i:i + size]), EVAL)
                   for i in range(0, len(array), size)]
            return torch.cat(out).cpu().numpy()

    def activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's eval-mode output, NHWC or (N, units) in canonical flat order."""
        collected: dict[str, torch.Tensor] = {}
        with torch.inference_mode(), self._compute():
            self._forward(self._to_nchw(self._images(images)), EVAL, collected)
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

    def gradients(self, images: np.ndarray, labels: np.ndarray,
                  training: bool = False) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and canonical gradients; ``training`` uses batch statistics and the dropout
        masks of the next step, but updates nothing (not even moving statistics)."""
        x = self._to_nchw(self._images(images))
        y = self._labels(labels, x.shape[0])
        mode = self._train_mode(update_stats=False) if training else EVAL
        with self._compute():
            loss = F.cross_entropy(self.net(x, mode).float(), y)
        with self._ieee():
            grads = torch.autograd.grad(loss, self._params)
        canonical = {n: self._canonical(n, g) for n, g in zip(self._trainable, grads)}
        return float(loss.detach()), canonical

    def train_step(self, images: np.ndarray, labels: np.ndarray,
                   fetch: bool = False) -> StepResult | None:
        """One update; loss and accuracy come from the same forward pass, pre-update."""
        x = self._to_nchw(self._images(images))
        y = self._labels(labels, x.shape[0])
        with self._compute():
            logits = self._forward(x, self._train_mode(update_stats=True))
            loss = F.cross_entropy(logits, y)
        scaled = loss * self.loss_scale if self.precision == "fp16" else loss
        with self._ieee():
            if self.ddp is None:
                grads = list(torch.autograd.grad(scaled, self._params))
            else:  # DDP averages the gradients over ranks while backward runs
                for param in self._params:
                    param.grad = None
                scaled.backward()
                grads = [param.grad for param in self._params]
            if self.precision != "fp16" or self._unscale(grads):
                self.optimizer.update(self._params, grads)
        if not fetch:
            return None
        with torch.no_grad():
            accuracy = (logits.argmax(1) == y).float().mean()
            values = torch.stack([loss, accuracy])
            if self.ddp is not None:  # the global batch's figures: shards are equal-sized
                import torch.distributed as dist

                dist.all_reduce(values)
                values /= self.parallel.processes
            loss_value, accuracy_value = values.tolist()  # one sync
        return StepResult(loss_value, accuracy_value)

    def _unscale(self, grads: list[torch.Tensor]) -> bool:
        """Divide fp16 gradients by the loss scale; whether they are finite (i.e. whether to
        apply the step). Updates the scale by ``convspec.precision``'s rule."""
        with torch.no_grad():
            torch._foreach_mul_(grads, 1.0 / self.loss_scale)
            finite = bool(torch.stack([g.isfinite().all() for g in grads]).all())
        self.loss_scale, self.good_steps = next_loss_scale(self.loss_scale, self.good_steps,
                                                           finite)
        return finite

    # -- data parallel ----------------------------------------------------------------------

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (e.g. a Ctrl-C seen by one)."""
        if self.ddp is None:
            return flag
        import torch.distributed as dist

        value = torch.tensor([int(flag)], device=self._device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def close(self) -> None:
        """Leave the process group (after the last collective call)."""
        if self.ddp is not None:
            import torch.distributed as dist

            self.ddp = None
            if dist.is_initialized():
                dist.destroy_process_group()

    # -- optimizer state --------------------------------------------------------------------

    def optimizer_state(self) -> dict[str, np.ndarray]:
        state = {"step": np.array(self.optimizer.step, dtype=np.int64)}
        for slot, tensors in self.optimizer.slots.items():
            for name, tensor in zip(self._trainable, tensors):
                state[f"{slot}/{name}"] = self._canonical(name, tensor)
        if self.precision == "fp16":
            state[SCALE_KEY] = np.array(self.loss_scale, dtype=np.float32)
            state[GOOD_STEPS_KEY] = np.array(self.good_steps, dtype=np.int64)
        return state

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        shapes = weight_shapes(self.spec)
        expected = {f"{s}/{n}": shapes[n] for s in self.optimizer.slots for n in self._trainable}
        step = check_optimizer_state(
            state, expected | loss_scale_state(self.precision),
            f"spec {self.spec.name!r} with {self.spec.train.optimizer.kind} in {self.precision}")
        converted = {key: _tensor(np.ascontiguousarray(self.net.slots[key.split("/", 1)[1]]
                                                       .from_canonical(np.asarray(
                                                           state[key], dtype=np.float32))))
                     for key in expected}
        with torch.no_grad():
            for slot, tensors in self.optimizer.slots.items():
                for name, tensor in zip(self._trainable, tensors):
                    tensor.copy_(converted[f"{slot}/{name}"])
        self.optimizer.step = step
        if self.precision == "fp16":
            self.loss_scale = float(state[SCALE_KEY])
            self.good_steps = int(state[GOOD_STEPS_KEY])
