"""The spec language: models, loading with located errors, cross-field checks."""

from .layers import LAYER_KINDS
from .load import load_spec, loads_spec, shapes, validate_spec
from .model import Spec

__all__ = ["LAYER_KINDS", "Spec", "load_spec", "loads_spec", "shapes", "validate_spec"]
