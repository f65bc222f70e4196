"""``TensorFlowModel``: the ``CompiledModel`` protocol on top of ``Network`` and ``Optimizer``.

Each entry point is one ``tf.function`` with a fixed input signature (batch dimension None),
so it is traced once whatever the batch sizes; the whole training step (forward, loss,
accuracy, gradients, moving statistics, update) is a single graph call. NumPy crosses the
boundary only at the edges, and training loss / accuracy become Python floats only when asked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from ...distributed import SINGLE, Parallel
from ...errors import BackendError, WeightsError
from ...precision import (
    GOOD_STEPS_KEY,
    GROWTH_INTERVAL,
    INITIAL_SCALE,
    SCALE_KEY,
    check_precision,
    loss_scale_state,
)
from ...specification import Spec
from ...weights import check_weights, init_weights
from .. import StepResult, check_device
from .model import Network, accuracy, cross_entropy
from .optim import make_optimizer


def resolve_device(device: str) -> tuple[str, str]:
    """(protocol name, TF device string): 'auto' takes a GPU when TensorFlow sees one."""
    check_device(device)
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cuda" and not gpus:
        raise BackendError("device 'cuda' was requested but TensorFlow sees no GPU (is the "
                           "CUDA build of TensorFlow installed?); use device 'cpu' or 'auto'")
    if device == "cuda" or (device == "auto" and gpus):
        return "cuda", "/GPU:0"
    return "cpu", "/CPU:0"


def local_devices(count: int, device: str) -> list[str]:
    """``count`` devices of this process for MirroredStrategy: GPUs, or on CPU that many
    logical CPU devices (which must be configured before TensorFlow initialises)."""
    if device == "cuda":
        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) < count:
            raise BackendError(f"{count} replicas need {count} GPUs; TensorFlow sees "
                               f"{len(gpus)}")
        return [f"/GPU:{i}" for i in range(count)]
    cpus = tf.config.list_physical_devices("CPU")
    with contextlib.suppress(RuntimeError):  # already initialised: use what exists
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < count:
        raise BackendError(f"TensorFlow was initialised with {len(logical)} CPU device(s) "
                           f"before {count} replicas were asked for; train in a new process")
    return [d.name for d in logical[:count]]


def make_strategy(parallel: Parallel, device: str) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy for a TF_CONFIG cluster, else MirroredStrategy."""
    if parallel.launcher == "tf_config":
        if device != "cuda" and parallel.local_devices > 1:
            raise BackendError("with TF_CONFIG each CPU worker trains one replica; start more "
                               "workers instead of --nproc")
        collective = tf.distribute.experimental.CommunicationImplementation
        impl = collective.NCCL if device == "cuda" else collective.RING
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=impl))
    devices = local_devices(parallel.local_devices, device)
    return tf.distribute.MirroredStrategy(devices=devices)


def _check_weights(spec: Spec, weights: Any) -> None:
    """WeightsError for anything but a mapping with exactly the spec's names and shapes."""
    if not isinstance(weights, Mapping):
        raise WeightsError(f"weights must be a mapping of name -> array, not "
                           f"{type(weights).__name__}")
    check_weights(spec, {name: np.asarray(value) for name, value in weights.items()})


class LossScale(tf.Module):
    """fp16 dynamic loss scaling with ``convspec.precision``'s rule, as graph ops."""

    def __init__(self) -> None:
        super().__init__(name="loss_scale")
        self.scale = tf.Variable(INITIAL_SCALE, dtype=tf.float32, trainable=False)
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False)

    def update(self, finite: tf.Tensor) -> None:
        good = self.good_steps + 1
        grow = tf.logical_and(finite, good >= GROWTH_INTERVAL)
        self.scale.assign(tf.where(finite, tf.where(grow, self.scale * 2.0, self.scale),
                                   self.scale / 2.0))
        self.good_steps.assign(tf.where(tf.logical_and(finite, tf.logical_not(grow)), good,
                                        tf.zeros_like(good)))


class TensorFlowModel:
    """A spec compiled to TensorFlow; arrays in and out are NumPy, canonical layout."""

    backend = "tensorflow"

    def __init__(self, spec: Spec, *, weights: Mapping[str, np.ndarray] | None = None,
                 device: str = "cpu", jit: bool = False, parallel: Parallel | None = None,
                 precision: str = "fp32"):
        self.spec = spec
        self.precision = check_precision(precision)
        compute = {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}[precision]
        self.device, self._tf_device = resolve_device(device)
        self.jit = jit
        self.parallel = parallel or SINGLE
        weights = init_weights(spec) if weights is None else weights
        _check_weights(spec, weights)
        self.strategy: tf.distribute.Strategy | None = None
        if self.parallel.enabled:
            if jit:
                raise BackendError("XLA (jit) and data-parallel replicas cannot be combined")
            self.strategy = make_strategy(self.parallel, self.device)
            local = self.strategy.num_replicas_in_sync // self.parallel.processes
            self.parallel = dataclasses.replace(self.parallel, local_devices=local)
            self.parallel.check_batch(spec.train.batch_size)
        with self.strategy.scope() if self.strategy else tf.device(self._tf_device):
            self.net = Network(spec, weights, compute)
            self.optimizer = make_optimizer(spec.train.optimizer, self.net.trainable)
            self.loss_scale = LossScale() if precision == "fp16" else None
        self._params = [v for _, v in self.net.trainable]
        self.input_shape = self.net.table.input
        images = tf.TensorSpec([None, *self.input_shape], tf.float32, name="images")
        labels = tf.TensorSpec([None], tf.int64, name="labels")

        def function(fn: Any, *signature: tf.TensorSpec) -> Any:
            # partial(): TF keys its "frequent retracing" warning on the code object, which
            # every model shares; a partial object is this model's own key.
            return tf.function(functools.partial(fn), input_signature=list(signature),
                               jit_compile=jit, autograph=False)

        self._train = function(self._train_step if self.strategy is None
                               else self._replicated_train_step, images, labels)
        self._any = function(self._any_replica, tf.TensorSpec([], tf.int32))
        self._train_concrete: Any = None  # the one trace, called directly (see train_step)
        self._logits = function(lambda x: self.net(x, training=False).logits, images)
        self._activations = function(
            lambda x: self.net(x, training=False, collect=True).activations, images)
        self._gradients = {
            training: function(lambda x, y, t=training: self._loss_and_grads(x, y, t)[:2],
                               images, labels)
            for training in (False, True)}

    # --- traced bodies -------------------------------------------------------------------

    def _loss_and_grads(self, images: tf.Tensor, labels: tf.Tensor, training: bool, *,
                        scaled: bool = False, first_row: tf.Tensor | int = 0
                        ) -> tuple[tf.Tensor, list[tf.Tensor], Any]:
        """Loss, gradients and the forward pass; ``scaled``: the gradients are those of the
        fp16 loss scale times the loss (``_apply`` divides them back)."""
        with tf.GradientTape() as tape:
            out = self.net(images, training=training, step=self.optimizer.step,
                           first_row=first_row)
            loss = cross_entropy(out.logits, labels)
            target = loss * self.loss_scale.scale if scaled and self.loss_scale else loss
        grads = tape.gradient(target, self._params,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return loss, grads, out

    def _apply(self, grads: list[tf.Tensor]) -> None:
        """The optimizer update; under fp16, of the unscaled gradients, skipped (and the scale
        halved) when they are not all finite."""
        if self.loss_scale is None:
            self.optimizer.apply(grads)
            return
        grads = [g / self.loss_scale.scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])

        def update() -> tf.Tensor:
            self.optimizer.apply(grads)
            return tf.constant(True)

        tf.cond(finite, update, lambda: tf.constant(False))
        self.loss_scale.update(finite)

    def _train_step(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        loss, grads, out = self._loss_and_grads(images, labels, True, scaled=True)
        acc = accuracy(out.logits, labels)  # of the logits before the update
        for variable, value in out.updates:
            variable.assign(value)
        self._apply(grads)
        return loss, acc

    def _replicated_train_step(self, images: tf.Tensor,
                               labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The train step under a strategy: each replica takes its equal, contiguous share of
        this process's batch; gradients, loss, accuracy and moving statistics are averaged
        over all replicas (all processes), then one update is applied to every copy."""
        assert self.strategy is not None
        local = self.parallel.local_devices
        per = tf.shape(images)[0] // local
        moving: list[tf.Variable] = []

        def replica(images: tf.Tensor, labels: tf.Tensor) -> Any:
            index = tf.distribute.get_replica_context().replica_id_in_sync_group
            start = tf.math.floormod(index, local) * per
            x, y = images[start:start + per], labels[start:start + per]
            loss, grads, out = self._loss_and_grads(x, y, True, scaled=True,
                                                    first_row=index * per)
            moving[:] = [variable for variable, _ in out.updates]
            return loss, accuracy(out.logits, y), grads, [value for _, value in out.updates]

        loss, acc, grads, updates = self.strategy.run(replica, args=(images, labels))

        def mean(value: Any) -> tf.Tensor:
            return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)

        for variable, value in zip(moving, updates, strict=True):
            variable.assign(mean(value))
        self._apply([mean(g) for g in grads])
        return mean(loss), mean(acc)

    def _any_replica(self, flag: tf.Tensor) -> tf.Tensor:
        """Sum of ``flag`` over all replicas of all processes."""
        if self.strategy is None:
            return flag
        per_replica = self.strategy.run(lambda: tf.identity(flag))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def any_rank(self, flag: bool) -> bool:
        """True on every worker when ``flag`` is true on any (e.g. a Ctrl-C seen by one)."""
        return bool(self._any(tf.constant(int(flag), tf.int32)) > 0)

    # --- NumPy boundary --------------------------------------------------------------------

    def _images(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images, dtype=np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            h, w, c = self.input_shape
            raise BackendError(f"images must be NHWC of shape (N, {h}, {w}, {c}) for spec "
                               f"{self.spec.name!r}; got {tuple(x.shape)}")
        return x

    def _labels(self, labels: np.ndarray, n: int) -> np.ndarray:
        y = np.asarray(labels)
        if y.shape != (n,) or (y.size and y.dtype.kind not in "iu"):
            raise BackendError(f"labels must be {n} integers (one per image); "
                               f"got {y.dtype} {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= self.spec.classes):
            raise BackendError(f"labels must lie in 0..{self.spec.classes - 1}; "
                               f"got {y.min()}..{y.max()}")
        return y.astype(np.int64, copy=False)

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: var.numpy().copy() for name, var in self.net.weights.items()}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        _check_weights(self.spec, weights)
        for name, var in self.net.weights.items():
            var.assign(np.asarray(weights[name], dtype=np.float32))

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        x = self._images(images)
        size = batch_size or self.spec.train.eval_batch_size
        if size <= 0:
            raise BackendError(f"batch_size must be positive, got {size}")
        if len(x) == 0:
            return np.zeros((0, self.spec.classes), np.float32)
        with tf.device(self._tf_device):
            parts = [self._logits(x[i:i + size]).numpy() for i in range(0, len(x), size)]
        return np.concatenate(parts)

    def activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        x = self._images(images)
        with tf.device(self._tf_device):
            return {k: v.numpy() for k, v in self._activations(x).items()}

    def gradients(self, images: np.ndarray, labels: np.ndarray,
                  training: bool = False) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and gradients; nothing is updated (not even batch-norm moving statistics).
        In training mode dropout uses the masks of the next ``train_step``."""
        x = self._images(images)
        y = self._labels(labels, len(x))
        with tf.device(self._tf_device):
            loss, grads = self._gradients[bool(training)](x, y)
        names = [n for n, _ in self.net.trainable]
        return float(loss), {n: g.numpy() for n, g in zip(names, grads, strict=True)}

    def train_step(self, images: np.ndarray, labels: np.ndarray,
                   fetch: bool = False) -> StepResult | None:
        x = self._images(images)
        y = self._labels(labels, len(x))
        with contextlib.nullcontext() if self.strategy else tf.device(self._tf_device):
            if self._train_concrete is None:  # the hot path skips tf.function's argument
                self._train_concrete = self._train.get_concrete_function()  # dispatch
            loss, acc = self._train_concrete(tf.constant(x), tf.constant(y))
        return StepResult(float(loss), float(acc)) if fetch else None

    def optimizer_state(self) -> dict[str, np.ndarray]:
        state = self.optimizer.state()
        if self.loss_scale is not None:
            state[SCALE_KEY] = np.asarray(self.loss_scale.scale.numpy(), np.float32)
            state[GOOD_STEPS_KEY] = np.asarray(self.loss_scale.good_steps.numpy(), np.int64)
        return state

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.optimizer.set_state(state, extra=loss_scale_state(self.precision))
        if self.loss_scale is not None:
            self.loss_scale.scale.assign(float(state[SCALE_KEY]))
            self.loss_scale.good_steps.assign(int(state[GOOD_STEPS_KEY]))

    @property
    def tracing_count(self) -> int:
        """How often the training step has been traced (1 after any number of calls)."""
        return int(self._train.experimental_get_tracing_count())

    def __repr__(self) -> str:
        replicas = f", replicas={self.parallel.replicas}" if self.parallel.enabled else ""
        return (f"TensorFlowModel(spec={self.spec.name!r}, device={self.device!r}, "
                f"jit={self.jit}{replicas})")
