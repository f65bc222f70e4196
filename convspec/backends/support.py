"""What a backend can build, and the one place a spec is checked against it.

A backend declares two optional attributes: ``layer_kinds`` (the kinds it has an op for) and
``features`` (of ``FEATURES``: ``graphs``, layers that take other layers than the previous
one; ``grouped_conv2d``; the regularisation of ``convspec.regularization``: ``weight_decay``,
``l2``, ``clip_norm``). A backend that declares neither builds what every backend built
before graphs: plain stacks of ``STACK_KINDS``, trained without regularisation.
``compile_model``, the way convspec compiles a spec, refuses with a BackendError naming the
kinds, features and layers a spec its backend cannot build, instead of failing inside the
framework (or, worse, computing a stack where the spec means a graph, or training without
the regularisation it asks for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BackendError
from ..regularization import features_used as regularization_used

if TYPE_CHECKING:
    from ..specification import Spec
    from . import Backend, CompiledModel

STACK_KINDS = frozenset({
    "conv2d", "maxpool", "avgpool", "relu", "tanh", "sigmoid", "leaky_relu", "softmax",
    "flatten", "dense", "dropout", "batchnorm"})
"""The layer kinds a backend that declares no ``layer_kinds`` builds (those before graphs)."""

FEATURES = {
    "graphs": "graph connections (layers that take other layers than the previous one)",
    "grouped_conv2d": "grouped convolution (conv2d with groups > 1)",
    "weight_decay": "decoupled weight decay",
    "l2": "L2 regularisation",
    "clip_norm": "gradient clipping by global norm",
}
"""What a spec may use beyond its layer kinds; a backend lists those it builds in
``features`` (a backend that declares none builds plain stacks of ungrouped layers)."""


def features_used(spec: Spec) -> dict[str, list[str]]:
    """Each feature of ``FEATURES`` that ``spec`` uses -> the layers (or training fields)
    that use it."""

    previous = ["input", *(row.name for row in spec.table.rows)]
    used = {
        "graphs": [row.name for i, row in enumerate(spec.table.rows)
                   if row.inputs != (previous[i],)],
        "grouped_conv2d": [layer.name for layer in spec.layers
                           if getattr(layer, "groups", 1) > 1],
    }
    return {feature: names for feature, names in used.items() if names
            } | regularization_used(spec)


def unsupported(backend: Backend, spec: Spec) -> str:
    """What in ``spec`` the backend cannot build, as one clause ('' when it builds all of
    it): the layer kinds (fused activations included) it has no op for and the features it
    lacks, each with the layers that need it."""
    kinds = frozenset(getattr(backend, "layer_kinds", STACK_KINDS))
    missing: dict[str, list[str]] = {}
    for layer in spec.layers:
        fused = getattr(layer, "activation", None)
        for kind in (layer.kind, fused) if fused else (layer.kind,):
            if kind not in kinds:
                missing.setdefault(kind, []).append(layer.name)
    parts = [f"no op for layer kind {kind!r} ({_few(names)})" for kind, names in missing.items()]
    features = frozenset(getattr(backend, "features", ()))
    parts += [f"no {FEATURES[feature]}, used by {_few(names)}"
              for feature, names in features_used(spec).items() if feature not in features]
    return "; ".join(parts)


def _few(items: list[str], shown: int = 3) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def check_support(backend: Backend, spec: Spec) -> None:
    """A BackendError, naming the kinds and layers, when ``backend`` cannot build ``spec``."""
    problem = unsupported(backend, spec)
    if problem:
        raise BackendError(f"the {backend.name} backend cannot build spec {spec.name!r} yet: "
                           f"{problem}. convspec's NumPy reference and its ONNX export run "
                           f"every spec")


def compile_model(backend: Backend, spec: Spec, **options: Any) -> CompiledModel:
    """``backend.compile(spec, **options)`` after ``check_support``: the one way convspec
    compiles a spec."""
    check_support(backend, spec)
    return backend.compile(spec, **options)
