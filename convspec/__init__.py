"""convspec: declarative CNN specs compiled to PyTorch or TensorFlow with the same numbers.

The public API is imported lazily, so ``import convspec`` stays cheap and never loads a
deep-learning framework::

    import convspec
    spec = convspec.load_spec("specs/mnist.yaml")
    print(convspec.infer_shapes(spec).params)            # 242062
    model = convspec.compile(spec, backend="torch")
    data = convspec.load_dataset(spec.train.dataset)
    convspec.Trainer(spec, model, data).fit()
    print(convspec.evaluate(model, data.test).summary())
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_spec": "convspec.specification",
    "loads_spec": "convspec.specification",
    "validate_spec": "convspec.specification",
    "Spec": "convspec.specification",
    "infer_shapes": "convspec.shapes",
    "get_backend": "convspec.backends",
    "list_backends": "convspec.backends",
    "init_weights": "convspec.weights",
    "save_weights": "convspec.weights",
    "load_weights": "convspec.weights",
    "load_dataset": "convspec.data",
    "load_data": "convspec.data",
    "Trainer": "convspec.train",
    "evaluate": "convspec.evaluation",
    "Evaluation": "convspec.evaluation",
    "SpecError": "convspec.errors",
    "ConvspecError": "convspec.errors",
}

__all__ = [*_LAZY, "compile", "__version__"]


def compile(spec: Any, backend: str = "torch", *, weights: Any = None, device: str = "cpu",
            **options: Any) -> Any:
    """Compile a spec (or a path to one) with the named backend."""
    from .backends import compile_model, get_backend
    from .specification import Spec, load_spec

    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    return compile_model(get_backend(backend), spec, weights=weights, device=device, **options)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'convspec' has no attribute {name!r}")
