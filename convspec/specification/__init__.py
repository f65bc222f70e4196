"""The spec language: models, loading with located errors, cross-field checks.

Imported lazily (like ``convspec``): the layer declarations (``convspec.layers``) use this
package's field types, and the spec model uses the layer declarations, so neither may need
the other's ``__init__`` to have run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..layers import LAYER_KINDS
    from .load import load_spec, loads_spec, shapes, validate_spec
    from .model import Spec

_LAZY = {
    "LAYER_KINDS": "convspec.layers",
    "Spec": "convspec.specification.model",
    "load_spec": "convspec.specification.load",
    "loads_spec": "convspec.specification.load",
    "shapes": "convspec.specification.load",
    "validate_spec": "convspec.specification.load",
}

__all__ = ["LAYER_KINDS", "Spec", "load_spec", "loads_spec", "shapes", "validate_spec"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'convspec.specification' has no attribute {name!r}")
