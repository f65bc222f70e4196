"""``TensorFlowModel``: the TensorFlow part of ``BaseModel`` (``base.py`` holds the rest).

NumPy arrays arrive checked and in canonical layout, which is TensorFlow's own. Each entry
point is one ``tf.function`` with a fixed input signature (batch dimension None), so it is
traced once whatever the batch sizes; the whole training step (forward, loss, accuracy,
gradients, moving statistics, update) is a single graph call, and training loss / accuracy
become Python floats only when asked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from ...distributed import Parallel
from ...errors import BackendError
from ...specification import Spec
from ..base import BaseModel
from .devices import data_parallel, resolve_device
from .network import Forward, Network
from .ops import EVAL, Mode, accuracy, cross_entropy
from .optimizers import make_optimizer
from .precision import COMPUTE_DTYPES, LossScale


class TensorFlowModel(BaseModel):
    """A spec compiled by the TensorFlow backend (see ``convspec.backends.CompiledModel``)."""

    backend = "tensorflow"

    def __init__(self, spec: Spec, *, weights: Mapping[str, np.ndarray] | None = None,
                 device: str = "cpu", parallel: Parallel | None = None,
                 precision: str = "fp32", jit: bool = False):
        super().__init__(spec, parallel=parallel, precision=precision, jit=jit)
        initial = self.initial_weights(weights)
        self.device, self._tf_device = resolve_device(device)
        self.strategy: tf.distribute.Strategy | None = None
        if self.parallel.enabled:
            if jit:
                raise BackendError("XLA (jit) and data-parallel replicas cannot be combined")
            self.strategy = data_parallel(self.parallel, self.device)
            local = self.strategy.num_replicas_in_sync // self.parallel.processes
            self.parallel = dataclasses.replace(self.parallel, local_devices=local)
            self.parallel.check_batch(spec.train.batch_size)
        with self.strategy.scope() if self.strategy else tf.device(self._tf_device):
            self.net = Network(spec, COMPUTE_DTYPES[precision])
            self.optimizer = make_optimizer(spec.train.optimizer,
                                            [(name, self.net.weights[name])
                                             for name in self.trainable], self.regularization,
                                            fused=self.strategy is None and precision != "fp16")
            self.loss_scale = LossScale() if precision == "fp16" else None
        self.set_weights(initial)
        self._lr: tuple[float, tf.Tensor] | None = None  # (learning rate, its tensor)
        self._build_functions()

    def _build_functions(self) -> None:
        """One ``tf.function`` per entry point, each with a fixed input signature."""
        images = tf.TensorSpec([None, *self.net.table.input], tf.float32, name="images")
        labels = tf.TensorSpec([None], tf.int64, name="labels")
        learning_rate = tf.TensorSpec([], tf.float64, name="learning_rate")

        def function(fn: Any, *signature: tf.TensorSpec) -> Any:
            # partial(): TF keys its "frequent retracing" warning on the code object, which
            # every model shares; a partial object is this model's own key.
            return tf.function(functools.partial(fn), input_signature=list(signature),
                               jit_compile=self.jit, autograph=False)

        self._train = function(self._graph_train_step if self.strategy is None
                               else self._graph_replicated_train_step,
                               images, labels, learning_rate)
        self._train_concrete: Any = None  # the one trace, called directly (see _apply_step)
        self._any = function(self._graph_any_replica, tf.TensorSpec([], tf.int32))
        self._broadcast = function(self._graph_broadcast, tf.TensorSpec([None], tf.float64))
        self._logits = function(lambda x: self.net(x).logits, images)
        self._activations = function(lambda x: self.net(x, collect=True).activations, images)
        self._gradients = {
            training: function(lambda x, y, t=training: self._graph_loss_and_grads(x, y, t)[:2],
                               images, labels)
            for training in (False, True)}

    # -- traced bodies ----------------------------------------------------------------------

    def _graph_loss_and_grads(self, images: tf.Tensor, labels: tf.Tensor, training: bool, *,
                              update_stats: bool = False, scaled: bool = False,
                              first_row: tf.Tensor | int = 0
                              ) -> tuple[tf.Tensor, list[tf.Tensor], Forward]:
        """Loss, gradients and the forward pass; ``scaled``: the gradients are those of the
        fp16 loss scale times the loss (``_graph_apply`` divides them back)."""
        mode = Mode(training=True, update_stats=update_stats, step=self.optimizer.iterations,
                    first_row=first_row) if training else EVAL
        with tf.GradientTape() as tape:
            out = self.net(images, mode)
            loss = cross_entropy(out.logits, labels)
            target = loss * self.loss_scale.scale if scaled and self.loss_scale else loss
        grads = tape.gradient(target, self.optimizer.params,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return loss, grads, out

    def _graph_apply(self, grads: list[tf.Tensor], learning_rate: tf.Tensor) -> None:
        """The optimizer update; under fp16, of the unscaled gradients, skipped (and the scale
        halved) when they are not all finite."""
        if self.loss_scale is None:
            self.optimizer.update(grads, learning_rate)
            return
        grads, finite = self.loss_scale.unscale(grads)

        def update() -> tf.Tensor:
            self.optimizer.update(grads, learning_rate)
            return tf.constant(True)

        tf.cond(finite, update, lambda: tf.constant(False))
        self.loss_scale.update(finite)

    def _graph_train_step(self, images: tf.Tensor, labels: tf.Tensor,
                          learning_rate: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        loss, grads, out = self._graph_loss_and_grads(images, labels, True, update_stats=True,
                                                      scaled=True)
        acc = accuracy(out.logits, labels)  # of the logits before the update
        for variable, value in out.updates:
            variable.assign(value)
        self._graph_apply(grads, learning_rate)
        return loss, acc

    def _graph_replicated_train_step(self, images: tf.Tensor, labels: tf.Tensor,
                                     learning_rate: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
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
            loss, grads, out = self._graph_loss_and_grads(x, y, True, update_stats=True,
                                                          scaled=True, first_row=index * per)
            moving[:] = [variable for variable, _ in out.updates]
            return loss, accuracy(out.logits, y), grads, [value for _, value in out.updates]

        loss, acc, grads, updates = self.strategy.run(replica, args=(images, labels))

        def mean(value: Any) -> tf.Tensor:
            return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)

        for variable, value in zip(moving, updates, strict=True):
            variable.assign(mean(value))
        self._graph_apply([mean(g) for g in grads], learning_rate)
        return mean(loss), mean(acc)

    def _graph_any_replica(self, flag: tf.Tensor) -> tf.Tensor:
        """Sum of ``flag`` over all replicas of all processes."""
        if self.strategy is None:
            return flag
        per_replica = self.strategy.run(lambda: tf.identity(flag))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def _graph_broadcast(self, values: tf.Tensor) -> tf.Tensor:
        """The primary process's ``values``: the sum over all replicas of the values of the
        primary's first replica and zeros from the others (exact)."""
        if self.strategy is None:
            return values
        primary = self.parallel.is_primary

        def replica() -> tf.Tensor:
            index = tf.distribute.get_replica_context().replica_id_in_sync_group
            first = tf.equal(tf.math.floormod(index, self.parallel.local_devices), 0)
            return tf.where(tf.logical_and(first, primary), values, tf.zeros_like(values))

        per_replica = self.strategy.run(replica)
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    # -- weights ----------------------------------------------------------------------------

    def _weight_tensors(self) -> dict[str, tf.Variable]:
        return self.net.weights

    def _to_numpy(self, name: str, tensor: Any) -> np.ndarray:
        return tensor.numpy()

    def _from_numpy(self, name: str, array: np.ndarray) -> np.ndarray:
        return array

    def _assign(self, pairs: Sequence[tuple[tf.Variable, np.ndarray]]) -> None:
        for variable, value in pairs:
            variable.assign(value)

    # -- inference --------------------------------------------------------------------------

    def _predict_batches(self, batches: list[np.ndarray]) -> np.ndarray:
        with tf.device(self._tf_device):
            return np.concatenate([self._logits(x).numpy() for x in batches])

    def _forward_activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        with tf.device(self._tf_device):
            return {name: value.numpy() for name, value in self._activations(images).items()}

    # -- training ---------------------------------------------------------------------------

    def _loss_and_gradients(self, images: np.ndarray, labels: np.ndarray,
                            training: bool) -> tuple[float, list[tf.Tensor]]:
        with tf.device(self._tf_device):
            loss, grads = self._gradients[training](images, labels)
        return float(loss), list(grads)

    def _apply_step(self, images: np.ndarray, labels: np.ndarray, learning_rate: float,
                    fetch: bool) -> tuple[float, float] | None:
        if self._lr is None or self._lr[0] != learning_rate:
            self._lr = (learning_rate, tf.constant(learning_rate, tf.float64))
        with contextlib.nullcontext() if self.strategy else tf.device(self._tf_device):
            if self._train_concrete is None:  # the hot path skips tf.function's argument
                self._train_concrete = self._train.get_concrete_function()  # dispatch
            loss, acc = self._train_concrete(tf.constant(images), tf.constant(labels),
                                             self._lr[1])
        return (float(loss), float(acc)) if fetch else None

    # -- data parallel ----------------------------------------------------------------------

    def any_rank(self, flag: bool) -> bool:
        """True on every worker when ``flag`` is true on any (e.g. a Ctrl-C seen by one)."""
        return bool(self._any(tf.constant(int(flag), tf.int32)) > 0)

    def broadcast(self, values: Sequence[float]) -> list[float]:
        """The primary process's ``values`` (float64) on every worker."""
        if self.strategy is None:
            return [float(v) for v in values]
        return [float(v) for v in self._broadcast(tf.constant(values, tf.float64)).numpy()]

    @property
    def tracing_count(self) -> int:
        """How often the training step has been traced (1 after any number of calls)."""
        return int(self._train.experimental_get_tracing_count())
