"""Convolution kinds (Keras ``layers/convolutional``): conv2d."""

from typing import ClassVar, Literal

from pydantic import Field

from ..shapes import spatial_input, window_output
from ..specification.types import Size
from .activation import Activation, ActivationLayer, activation_layer
from .base import BaseLayer, LayerOutput, Padding, Pair, Shape, WeightSlot


class Conv2D(BaseLayer):
    """2-D convolution, NHWC; kernel stored as HWIO."""

    name_prefix: ClassVar[str] = "conv"
    has_weights: ClassVar[bool] = True

    kind: Literal["conv2d"] = Field(description="2-D convolution")
    filters: Size = Field(description="Number of output channels.")
    kernel: Pair = Field(description="Kernel size: an integer or [height, width].")
    stride: Pair = Field((1, 1), description="Stride: an integer or [height, width].")
    padding: Padding = Field(
        "valid",
        description="'same' (TensorFlow: output = ceil(input/stride), extra padding at the "
        "bottom/right), 'valid' (no padding) or explicit symmetric zero padding per side.",
    )
    dilation: Pair = Field((1, 1), description="Dilation rate: an integer or [height, width].")
    bias: bool = Field(True, description="Add a learned bias per output channel.")
    activation: Activation | None = Field(None, description="Activation applied after the bias.")

    @property
    def activation_layer(self) -> ActivationLayer | None:
        """The activation applied after the bias, as its layer kind (None for none)."""
        return activation_layer(self.activation)

    def compute_output_shape(self, inputs: tuple[Shape, ...]) -> LayerOutput:
        shape = spatial_input(self.kind, self.single_input(inputs))
        (h, w), pads = window_output(shape, self.padding, self.kernel, self.stride,
                                     self.dilation, "kernel")
        kh, kw = self.kernel
        return LayerOutput((h, w, self.filters), h * w * self.filters * kh * kw * shape[2], pads)

    def build(self, inputs: tuple[Shape, ...]) -> tuple[WeightSlot, ...]:
        kh, kw = self.kernel
        kernel = WeightSlot("kernel", (kh, kw, inputs[0][-1], self.filters), init="weights")
        if not self.bias:
            return (kernel,)
        return kernel, WeightSlot("bias", (self.filters,), init="biases")
