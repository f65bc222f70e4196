"""The Backend protocol and the registry that finds backends by name.

A backend compiles a validated spec into a framework model that speaks convspec's canonical
language: NHWC float32 images in, canonical weights (HWIO kernels, flatten in H, W, C order)
in and out, and convspec's own numerics, whatever the framework's defaults are:

* padding: exactly the amounts in ``convspec.shapes`` (TensorFlow SAME, larger half
  bottom/right); padded cells never win a max and never count in an average;
* loss: mean softmax cross-entropy of the logits; accuracy: mean of argmax == label;
* Adam (TensorFlow 1): t += 1; lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t);
  m += (g - m) (1 - b1); v += (g^2 - v) (1 - b2); w -= lr_t * m / (sqrt(v) + eps)
  (the moment updates in the form of TF1's ApplyAdam kernel, i.e. linear interpolation);
* SGD: w -= lr g.  Momentum (TF1): a = mu a + g; w -= lr a  (Nesterov: w -= lr (g + mu a));
* ``lr`` is each step's rate, given to ``train_step`` (schedules live in the trainer); before
  the rule, the L2 term, global-norm clipping and decoupled weight decay of
  ``convspec.regularization``;
* batch norm (Keras): train mode normalises with the batch mean and biased variance and
  updates moving = momentum * moving + (1 - momentum) * batch; eval mode uses the moving stats;
* dropout: inverted (kept values scaled by 1 / (1 - rate)), training only, with the masks of
  ``convspec.dropout``: a counter hash of (train seed, optimizer step, layer, element
  position in the global batch), so every backend, a resumed run and any number of
  data-parallel replicas draw the same masks.

A backend implements ``CompiledModel`` by subclassing ``base.BaseModel``, which owns what is
the same for every framework (input checks and their wording, predict batching, the weights
and optimizer-state formats and checks, fp16 state keys, single-process ``any_rank`` /
``close``); the backend writes only its framework's part.

Backends are found through the ``convspec.backends`` entry-point group (the project's own
pyproject registers ``torch`` and ``tensorflow`` there, and third-party packages can add
more); a framework is imported only when its backend compiles a model.

How a backend trains data-parallel is its own business, declared by two optional hooks
(``ParallelBackend``): ``parallel_layout`` (where this process sits) and ``launch`` (start the
worker processes). A backend without them trains on one process; ``parallel_layout`` and
``launch`` below apply that default.

What a backend can build it declares in two optional attributes, ``layer_kinds`` and
``features`` (``support.py``); ``compile_model`` refuses a spec its backend cannot build.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..distributed import SINGLE, Parallel, from_torchrun
from ..errors import BackendError, UsageError
from .support import (
    FEATURES,
    STACK_KINDS,
    check_support,
    compile_model,
    features_used,
    unsupported,
)

if TYPE_CHECKING:
    from ..specification import Spec

ENTRY_POINT_GROUP = "convspec.backends"
# Used when the package metadata is unavailable (e.g. running from a source tree).
BUILTIN = {
    "torch": "convspec.backends.torch:TorchBackend",
    "tensorflow": "convspec.backends.tensorflow:TensorFlowBackend",
}
ALIASES = {"tf": "tensorflow", "pytorch": "torch", "keras": "tensorflow"}
DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class StepResult:
    """Loss and accuracy of one training minibatch (computed before the update)."""

    loss: float
    accuracy: float


@runtime_checkable
class CompiledModel(Protocol):
    """A spec compiled by one backend: the public contract; all arrays crossing it are NumPy.

    Bad input raises ``BackendError`` (images, labels, batch size) or ``WeightsError``
    (weights, optimizer state), worded the same in every backend (``base.BaseModel``).
    """

    spec: Spec
    backend: str
    device: str

    def get_weights(self) -> dict[str, np.ndarray]:
        """Canonical weights: name -> float32 array (``conv1/kernel`` HWIO, ``fc1/kernel``
        (inputs, units) with inputs in H, W, C order, ``*/bias``, ``bn1/gamma`` ...)."""
        ...

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load canonical weights (every name, exact shapes; WeightsError otherwise)."""
        ...

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Logits (N, classes) float32 for NHWC float32 images, in evaluation mode."""
        ...

    def activations(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output by layer name, NHWC or (N, units), evaluation mode."""
        ...

    def gradients(self, images: np.ndarray, labels: np.ndarray,
                  training: bool = False) -> tuple[float, dict[str, np.ndarray]]:
        """Mean loss and its gradient w.r.t. every trainable canonical weight (no update)."""
        ...

    def train_step(self, images: np.ndarray, labels: np.ndarray, fetch: bool = False,
                   learning_rate: float | None = None) -> StepResult | None:
        """One optimizer step on a minibatch with ``learning_rate`` (the step's rate, computed
        by the caller, e.g. a schedule; default: the spec's ``train.optimizer.learning_rate``),
        regularised as ``convspec.regularization`` says; loss (the cross-entropy) and
        accuracy only when ``fetch``."""
        ...

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """Canonical optimizer state: ``step`` (int64 scalar) and ``<slot>/<weight name>``
        arrays (slots: ``m``, ``v`` for Adam, ``accum`` for momentum)."""
        ...

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what ``optimizer_state`` returned (for exact resume)."""
        ...


class Backend(Protocol):
    """A factory of compiled models for one framework."""

    name: str
    framework: str  # human name, e.g. "PyTorch"
    module: str  # top-level module whose presence means the framework is installed
    extra: str  # pip extra that installs it, e.g. "torch"

    def compile(self, spec: Spec, *, weights: Mapping[str, np.ndarray] | None = None,
                device: str = "cpu") -> CompiledModel:
        """Build the spec's model; initial weights from ``weights`` or the spec's init.

        Optional keywords, passed only when a run asks for them (a backend without them
        simply cannot be asked): ``parallel`` (a ``convspec.distributed.Parallel``; the model
        then has a ``parallel`` attribute, averages gradients over replicas and offers
        ``any_rank(flag)``, ``broadcast(values)`` (the primary rank's floats on every rank)
        and ``close()``), ``precision`` ("bf16" / "fp16", see ``convspec.precision``) and
        ``jit`` (compile the training step).
        """
        ...


class ParallelBackend(Backend, Protocol):
    """A backend that trains data-parallel: the two optional hooks, both called before any
    data is loaded or any model compiled."""

    def parallel_layout(self, nproc: int, env: Mapping[str, str]) -> Parallel:
        """This process's place in a run asked for ``nproc`` replicas (``--nproc``), read from
        the launcher's environment ``env``; ``UsageError`` for a layout it cannot train."""
        ...

    def launch(self, nproc: int, argv: list[str]) -> int | None:
        """Start ``convspec <argv>`` on ``nproc`` worker processes and return their exit
        status, or None when this process trains by itself (e.g. on several local devices)."""
        ...


def parallel_layout(backend: Backend, nproc: int = 1,
                    env: Mapping[str, str] | None = None) -> Parallel:
    """The data-parallel layout of this process for ``backend`` (``env``: os.environ).

    Calls the backend's ``parallel_layout`` hook; a backend without one trains on a single
    process, so ``nproc > 1`` or a multi-process torchrun launch is a ``UsageError``.
    """
    env = os.environ if env is None else env
    hook = getattr(backend, "parallel_layout", None)
    if hook is not None:
        return hook(nproc, env)
    torchrun = from_torchrun(env)
    if torchrun is not None and torchrun.processes > 1:
        raise UsageError(f"torchrun started this process, but the {backend.name} backend "
                         f"trains on a single process (it has no parallel_layout hook)")
    if nproc > 1:
        raise UsageError(f"--nproc {nproc}: the {backend.name} backend trains on a single "
                         f"process (it has no parallel_layout hook); drop --nproc")
    return SINGLE


def launch(backend: Backend, nproc: int, argv: list[str]) -> int | None:
    """Run ``convspec <argv>`` on ``nproc`` processes through the backend's ``launch`` hook;
    its exit status, or None when the backend trains in this process (no hook, or the hook
    declines)."""
    hook = getattr(backend, "launch", None)
    return None if hook is None else hook(nproc, argv)


def device_memory(backend: Backend, device: str) -> tuple[int, str] | None:
    """(free bytes, where from) of the accelerator ``device`` resolves to, from the backend's
    optional ``device_memory`` hook (it imports its framework: call it only when that backend
    is about to compile); None on the CPU, or when the backend cannot tell."""
    if device == "cpu":
        return None
    hook = getattr(backend, "device_memory", None)
    return None if hook is None else hook(device)


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    found = dict(BUILTIN)
    try:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            found[ep.name] = ep.value
    except Exception:  # broken metadata of some other distribution must not break us
        pass
    return found


def list_backends() -> list[str]:
    """Names of every registered backend (installed or not)."""
    return sorted(_entry_points())


def canonical_name(name: str) -> str:
    key = name.lower()
    return ALIASES.get(key, key)


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj() if isinstance(obj, type) else obj


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (aliases: tf, pytorch, keras), checked to be usable."""
    registry = _entry_points()
    key = canonical_name(name)
    if key not in registry:
        raise BackendError(f"unknown backend {name!r}; registered backends: "
                           f"{', '.join(sorted(registry))} (aliases: {', '.join(sorted(ALIASES))})")
    try:
        backend = _load(registry[key])
    except (ImportError, AttributeError) as exc:
        raise BackendError(f"backend {key!r} is registered as {registry[key]!r} but cannot "
                           f"be loaded: {exc}") from None
    if importlib.util.find_spec(backend.module) is None:
        raise BackendError(f"backend {key!r} needs {backend.framework}: "
                           f'pip install "convspec[{backend.extra}]"')
    return backend


def is_available(name: str) -> bool:
    """True when the backend is registered and its framework is installed (no import)."""
    try:
        get_backend(name)
    except BackendError:
        return False
    return True


def available_backends() -> list[str]:
    return [name for name in list_backends() if is_available(name)]


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise BackendError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    return device


__all__ = [
    "ALIASES", "BUILTIN", "DEVICES", "ENTRY_POINT_GROUP", "FEATURES", "STACK_KINDS", "Backend",
    "CompiledModel", "ParallelBackend", "StepResult", "available_backends", "canonical_name",
    "check_device", "check_support", "compile_model", "features_used", "get_backend",
    "is_available", "launch", "list_backends", "parallel_layout", "unsupported",
]
