"""Field types shared by every part of the spec language: bounded sizes and finite numbers.

Every integer size is bounded (a 400-digit ``units`` must be a located error, not an overflow
deep inside shape inference) and every float is finite (``.inf``, ``.nan`` and ``1e400``, which
YAML reads as infinity, are located errors). Use these types for every new field.
"""

from typing import Annotated

from pydantic import Field

# The largest extent (pixels, channels, units, images, iterations) a spec may ask for: the int32
# range in which every framework indexes tensor dimensions.
MAX_SIZE = 2**31 - 1
# Seeds are 63-bit: NumPy, PyTorch and TensorFlow all take them.
MAX_SEED = 2**63 - 1

Size = Annotated[int, Field(gt=0, le=MAX_SIZE)]
"""A positive integer count or extent, at most ``MAX_SIZE``."""

Count = Annotated[int, Field(ge=0, le=MAX_SIZE)]
"""A non-negative integer count, at most ``MAX_SIZE``."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A float that is neither infinite nor NaN (range checks are added per field)."""
