"""``BaseModel``: the ``CompiledModel`` contract written once, over a small framework part.

Everything that is the same whatever the framework lives here: the checks of images, labels,
weights and optimizer state and their wording, predict batching, the canonical optimizer
state (``step``, ``<slot>/<weight>``, fp16's loss-scale entries), the learning rate each update
is given (the caller's, checked, or the spec's), the regularisation its optimizer applies
(``convspec.regularization``), and the single-process defaults of the data-parallel methods.
A backend subclasses ``BaseModel`` and writes only its framework's part, the abstract methods
below (converting a tensor to and from canonical NumPy, the forward pass, gradients, one
training step), and gives the model two attributes that follow the protocols ``Optimizer``
and ``LossScale``.

Every public method takes and returns NumPy; the framework part receives checked arrays
(NHWC float32 C-contiguous images, int64 labels in range) and never sees anything else.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from ..distributed import SINGLE, Parallel
from ..errors import BackendError, WeightsError
from ..precision import GOOD_STEPS_KEY, SCALE_KEY, check_precision, loss_scale_state
from ..regularization import Regularization
from ..weights import (
    check_optimizer_state,
    check_weights,
    init_weights,
    trainable_names,
    weight_shapes,
)
from . import StepResult

if TYPE_CHECKING:
    from ..specification import Spec


class Optimizer(Protocol):
    """What the base needs of a backend's optimizer (both built-in backends' ``Optimizer``
    classes follow it): its slot names (``m``, ``v`` / ``accum`` / none), the number of
    updates applied (read and set as a Python int) and its slot tensors by canonical key.
    A backend's optimizer applies ``BaseModel.regularization`` in its update when the backend
    declares the regularisation features (``convspec.backends.support``)."""

    slot_names: tuple[str, ...]
    step: int

    def state(self) -> dict[str, Any]:
        """Framework tensors by ``<slot>/<weight name>``, slots in ``slot_names`` order,
        weights in the spec's order of trainable weights."""
        ...


class LossScale(Protocol):
    """fp16 dynamic loss scaling (``convspec.precision``'s rule), as a backend keeps it."""

    def state(self) -> tuple[float, int]:
        """(scale, finite steps in a row)."""
        ...

    def set_state(self, scale: float, good_steps: int) -> None:
        ...


def check_images(spec: Spec, images: Any) -> np.ndarray:
    """``images`` as a C-contiguous float32 NHWC array of the spec's input shape.

    Raises BackendError naming the expected and the given shape.
    """
    array = np.asarray(images)
    shape = (spec.input.height, spec.input.width, spec.input.channels)
    if array.ndim != 4 or array.shape[1:] != shape:
        h, w, c = shape
        raise BackendError(f"spec {spec.name!r} takes NHWC images of shape (N, {h}, {w}, {c}); "
                           f"got an array of shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def check_labels(spec: Spec, labels: Any, n: int) -> np.ndarray:
    """``labels`` as ``n`` int64 class indices in ``[0, spec.classes)``.

    Raises BackendError for another shape, a non-integer dtype or a value out of range.
    """
    array = np.asarray(labels)
    if array.shape != (n,) or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise BackendError(f"labels must be {n} integers (one per image); got {array.dtype} "
                           f"array of shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= spec.classes):
        raise BackendError(f"labels must be in [0, {spec.classes}); got values from "
                           f"{array.min()} to {array.max()}")
    return array.astype(np.int64, copy=False)


def check_learning_rate(learning_rate: Any) -> float:
    """``learning_rate`` as a Python float: finite and >= 0 (0 is a warmup's first step).

    Raises BackendError otherwise.
    """
    try:
        value = float(learning_rate)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0.0):
        raise BackendError(f"learning_rate must be a finite number >= 0, got {learning_rate!r}")
    return value


def check_weights_mapping(spec: Spec, weights: Any) -> dict[str, np.ndarray]:
    """``weights`` as float32 arrays with exactly the spec's names and shapes.

    Raises WeightsError for anything but a mapping, and for missing, unexpected or misshapen
    entries (all of them listed).
    """
    if not isinstance(weights, Mapping):
        raise WeightsError(f"weights must be a mapping of name -> array, not "
                           f"{type(weights).__name__}")
    arrays = {name: np.asarray(value) for name, value in weights.items()}
    check_weights(spec, arrays)
    return {name: value.astype(np.float32, copy=False) for name, value in arrays.items()}


class BaseModel(abc.ABC):
    """A spec compiled by one backend (see ``convspec.backends.CompiledModel``).

    A subclass sets ``backend`` (class attribute), ``device`` ("cpu" or "cuda"),
    ``optimizer`` (an ``Optimizer``) and ``loss_scale`` (a ``LossScale`` under fp16, else
    None), loads the initial weights with ``set_weights(self.initial_weights(weights))``, and
    implements the abstract methods. ``any_rank`` and ``close`` are those of a single process;
    a data-parallel backend overrides them.
    """

    backend: ClassVar[str]
    device: str
    optimizer: Optimizer
    loss_scale: LossScale | None

    def __init__(self, spec: Spec, *, parallel: Parallel | None = None,
                 precision: str = "fp32", jit: bool = False):
        self.spec = spec
        self.parallel = parallel or SINGLE
        self.precision = check_precision(precision)
        self.jit = jit
        self.trainable = trainable_names(spec)  # the order of gradients and optimizer slots
        self.regularization = Regularization.from_spec(spec, self.trainable)

    def __repr__(self) -> str:
        extra = "" if self.precision == "fp32" else f", precision={self.precision!r}"
        extra += ", jit=True" if self.jit else ""
        extra += f", replicas={self.parallel.replicas}" if self.parallel.enabled else ""
        return f"{type(self).__name__}(spec={self.spec.name!r}, device={self.device!r}{extra})"

    def initial_weights(self, weights: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """Checked ``weights``, or the spec's initialisation when None (call before building
        anything, so a bad mapping fails fast)."""
        return init_weights(self.spec) if weights is None else check_weights_mapping(self.spec,
                                                                                      weights)

    def learning_rate(self) -> float:
        """The learning rate of an update whose caller gives none: the spec's
        ``train.optimizer.learning_rate`` (a schedule's rates come from the trainer)."""
        return float(self.spec.train.optimizer.learning_rate)

    # -- weights ----------------------------------------------------------------------------

    def _canonical(self, name: str, tensor: Any) -> np.ndarray:
        """A fresh float32 C-order array in canonical layout (never aliasing a tensor)."""
        return np.array(self._to_numpy(name, tensor), dtype=np.float32, order="C", copy=True)

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: self._canonical(name, tensor)
                for name, tensor in self._weight_tensors().items()}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        arrays = check_weights_mapping(self.spec, weights)
        tensors = self._weight_tensors()  # all converted before any copy: a failure changes nothing
        self._assign([(tensor, self._from_numpy(name, arrays[name]))
                      for name, tensor in tensors.items()])

    # -- inference --------------------------------------------------------------------------

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Logits (N, classes) float32 in evaluation mode, ``batch_size`` (default: the spec's
        ``train.eval_batch_size``) images at a time."""
        array = check_images(self.spec, images)
        size = batch_size or self.spec.train.eval_batch_size
        if size <= 0:
            raise BackendError(f"batch_size must be positive, got {size}")
        if not len(array):
            return np.zeros((0, self.spec.classes), dtype=np.float32)
        return self._predict_batches([array[i:i + size] for i in range(0, len(array), size)])

    def activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's evaluation-mode output by layer name, NHWC or (N, units), float32."""
        return self._forward_activations(check_images(self.spec, images))

    # -- training ---------------------------------------------------------------------------

    def gradients(self, images: np.ndarray, labels: np.ndarray,
                  training: bool = False) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy and its canonical gradients for every trainable weight (before
        the L2 term and clipping, which the update adds: ``convspec.regularization``).
        ``training`` uses batch statistics and the dropout masks of the coming update, but
        updates nothing (not even moving statistics)."""
        x = check_images(self.spec, images)
        y = check_labels(self.spec, labels, len(x))
        loss, grads = self._loss_and_gradients(x, y, bool(training))
        return loss, {name: self._canonical(name, grad)
                      for name, grad in zip(self.trainable, grads, strict=True)}

    def train_step(self, images: np.ndarray, labels: np.ndarray, fetch: bool = False,
                   learning_rate: float | None = None) -> StepResult | None:
        """One update with ``learning_rate`` (a float >= 0, the step's scheduled rate; default
        ``learning_rate()``); with ``fetch``, the loss and accuracy of the same forward pass
        (before the update), else None (nothing waits for the device)."""
        x = check_images(self.spec, images)
        y = check_labels(self.spec, labels, len(x))
        lr = self.learning_rate() if learning_rate is None else check_learning_rate(
            learning_rate)
        result = self._apply_step(x, y, lr, fetch)
        return None if result is None else StepResult(*result)

    # -- optimizer state --------------------------------------------------------------------

    def optimizer_state(self) -> dict[str, np.ndarray]:
        state = {"step": np.array(self.optimizer.step, dtype=np.int64)}
        for key, tensor in self.optimizer.state().items():
            state[key] = self._canonical(key.split("/", 1)[1], tensor)
        if self.loss_scale is not None:
            scale, good_steps = self.loss_scale.state()
            state[SCALE_KEY] = np.array(scale, dtype=np.float32)
            state[GOOD_STEPS_KEY] = np.array(good_steps, dtype=np.int64)
        return state

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        shapes = weight_shapes(self.spec)
        expected = {f"{slot}/{name}": shapes[name]
                    for slot in self.optimizer.slot_names for name in self.trainable}
        owner = (f"spec {self.spec.name!r} with {self.spec.train.optimizer.kind} in "
                 f"{self.precision}")
        step = check_optimizer_state(state, expected | loss_scale_state(self.precision), owner)
        tensors = self.optimizer.state()
        self._assign([(tensors[key], self._from_numpy(key.split("/", 1)[1],
                                                      np.asarray(state[key], dtype=np.float32)))
                      for key in expected])
        self.optimizer.step = step
        if self.loss_scale is not None:
            self.loss_scale.set_state(float(state[SCALE_KEY]), int(state[GOOD_STEPS_KEY]))

    # -- data parallel (one process) --------------------------------------------------------

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (e.g. a Ctrl-C seen by one)."""
        return flag

    def broadcast(self, values: Sequence[float]) -> list[float]:
        """The primary rank's ``values`` (float64) on every rank (e.g. a validation result
        only the primary measured); every rank must call it with as many values."""
        return [float(v) for v in values]

    def close(self) -> None:
        """Release what the model holds for data-parallel training (a process group)."""
        return None  # one process holds nothing

    # -- the framework part -----------------------------------------------------------------

    @abc.abstractmethod
    def _weight_tensors(self) -> Mapping[str, Any]:
        """The framework tensors of every canonical weight, by name, in the spec's order."""

    @abc.abstractmethod
    def _to_numpy(self, name: str, tensor: Any) -> np.ndarray:
        """A tensor of weight ``name`` (the weight, its gradient or an optimizer slot) as a
        NumPy array in canonical layout."""

    @abc.abstractmethod
    def _from_numpy(self, name: str, array: np.ndarray) -> Any:
        """A canonical float32 array of weight ``name`` in the framework's layout, ready for
        ``_assign``."""

    @abc.abstractmethod
    def _assign(self, pairs: Sequence[tuple[Any, Any]]) -> None:
        """Copy each ``_from_numpy`` value into its tensor, in place."""

    @abc.abstractmethod
    def _predict_batches(self, batches: list[np.ndarray]) -> np.ndarray:
        """Float32 logits of every (non-empty) batch, concatenated."""

    @abc.abstractmethod
    def _forward_activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's evaluation-mode output, canonical layout, float32."""

    @abc.abstractmethod
    def _loss_and_gradients(self, images: np.ndarray, labels: np.ndarray,
                            training: bool) -> tuple[float, list[Any]]:
        """Loss and gradient tensors in ``self.trainable`` order; updates nothing."""

    @abc.abstractmethod
    def _apply_step(self, images: np.ndarray, labels: np.ndarray, learning_rate: float,
                    fetch: bool) -> tuple[float, float] | None:
        """One update with ``learning_rate``; (loss, accuracy) before it when ``fetch``."""
