"""Normalization kinds (Keras ``layers/normalization``): batchnorm."""

from typing import ClassVar, Literal

from pydantic import Field

from ..specification.types import FiniteFloat
from .base import BaseLayer, Shape, WeightSlot


class BatchNorm(BaseLayer):
    """Batch normalization over the channel (last) axis, Keras semantics."""

    name_prefix: ClassVar[str] = "bn"
    has_weights: ClassVar[bool] = True

    kind: Literal["batchnorm"] = Field(description="Batch normalization over channels")
    momentum: FiniteFloat = Field(
        0.99, gt=0, lt=1,
        description="Moving-average momentum, Keras convention: new = m * old + (1 - m) * batch.",
    )
    epsilon: FiniteFloat = Field(1e-3, gt=0, description="Added to the variance.")

    def build(self, inputs: tuple[Shape, ...]) -> tuple[WeightSlot, ...]:
        """Scale and offset (trained), then the moving mean and variance (updated by
        training steps, not by the optimizer: non-trainable, as Keras counts them)."""
        channels = (inputs[0][-1],)
        return (WeightSlot("gamma", channels, init="ones"),
                WeightSlot("beta", channels, init="zeros"),
                WeightSlot("moving_mean", channels, trainable=False, init="zeros"),
                WeightSlot("moving_variance", channels, trainable=False, init="ones"))
