"""Field types shared by every part of the spec language: bounded sizes and finite numbers.

Every integer size is bounded (a 400-digit ``units`` must be a located error, not an overflow
deep inside shape inference) and every float is finite (``.inf``, ``.nan`` and ``1e400``, which
YAML reads as infinity, are located errors). Use these types for every new field.
"""

from typing import Annotated

from pydantic import Field

from ..limits import MAX_SEED, MAX_SIZE

__all__ = ["MAX_SEED", "MAX_SIZE", "Count", "FiniteFloat", "Seed", "Size"]

Size = Annotated[int, Field(gt=0, le=MAX_SIZE)]
"""A positive integer count or extent, at most ``MAX_SIZE``."""

Count = Annotated[int, Field(ge=0, le=MAX_SIZE)]
"""A non-negative integer count, at most ``MAX_SIZE``."""

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
"""A random seed: a non-negative integer of at most 63 bits."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A float that is neither infinite nor NaN (range checks are added per field)."""
