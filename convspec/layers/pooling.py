"""Pooling kinds (Keras ``layers/pooling``): maxpool, avgpool and global_avgpool."""

from typing import Any, ClassVar, Literal

from pydantic import Field

from ..shapes import format_shape, spatial_input, window_output
from .base import BaseLayer, LayerOutput, Padding, Pads, Pair, Shape


class Pooling(BaseLayer):
    """Base of the 2-D pooling kinds: window, stride, padding; no weights."""

    name_prefix: ClassVar[str] = "pool"

    size: Pair = Field((2, 2), description="Pooling window: an integer or [height, width].")
    stride: Pair | None = Field(None, description="Stride; default: the window size.")
    padding: Padding = Field(
        "valid",
        description="'same' (TensorFlow: output = ceil(input/stride)), 'valid', or explicit "
        "padding per side. Padded cells are ignored: never the max, not counted in the average.",
    )

    @property
    def strides(self) -> tuple[int, int]:
        """The stride in effect: ``stride``, else the window size."""
        return self.stride or self.size

    def compute_output_shape(self, inputs: tuple[Shape, ...]) -> LayerOutput:
        shape = spatial_input(self.kind, self.single_input(inputs))
        padding = self.padding
        if not isinstance(padding, str) and any(p >= k for p, k in zip(padding, self.size)):
            raise ValueError(
                f"pooling padding {list(padding)} must be smaller than the window "
                f"{format_shape(self.size)}, or some windows would hold only padding"
            )
        (h, w), pads = window_output(shape, padding, self.size, self.strides, (1, 1), "window")
        return LayerOutput((h, w, shape[2]), 0, pads)

    def resolved(self, pads: Pads | None) -> dict[str, Any]:
        return {**super().resolved(pads), "stride": list(self.strides)}


class MaxPool(Pooling):
    """Max pooling."""

    kind: Literal["maxpool"] = Field(description="2-D max pooling")


class AvgPool(Pooling):
    """Average pooling over the unpadded cells of each window."""

    kind: Literal["avgpool"] = Field(description="2-D average pooling")


class GlobalAvgPool(BaseLayer):
    """The mean of each channel over the whole image: HxWxC -> C (Keras
    ``GlobalAveragePooling2D``, torch ``AdaptiveAvgPool2d(1)`` then flatten)."""

    name_prefix: ClassVar[str] = "global_pool"

    kind: Literal["global_avgpool"] = Field(
        description="Mean over height and width: HxWxC -> C (no flatten needed after it)")

    def compute_output_shape(self, inputs: tuple[Shape, ...]) -> LayerOutput:
        shape = spatial_input(self.kind, self.single_input(inputs))
        return LayerOutput((shape[2],))
