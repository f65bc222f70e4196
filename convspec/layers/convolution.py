"""Convolution kinds (Keras ``layers/convolutional``): conv2d (optionally grouped) and
depthwise_conv2d."""

from typing import Any, ClassVar, Literal

from pydantic import Field

from ..shapes import spatial_input, window_output
from ..specification.types import Size
from .activation import Activation, ActivationLayer, activation_layer
from .base import BaseLayer, LayerOutput, Padding, Pair, Shape, WeightSlot

_PADDING = ("'same' (TensorFlow: output = ceil(input/stride), extra padding at the "
            "bottom/right), 'valid' (no padding) or explicit symmetric zero padding per side.")


class Conv2D(BaseLayer):
    """2-D convolution, NHWC; kernel stored as HWIO, ``(kh, kw, in / groups, filters)`` when
    grouped (TensorFlow's layout; PyTorch's ``groups``: output channel ``o`` sees the input
    channels of group ``o // (filters / groups)``)."""

    name_prefix: ClassVar[str] = "conv"
    has_weights: ClassVar[bool] = True
    added_later: ClassVar[dict[str, Any]] = {"groups": 1}

    kind: Literal["conv2d"] = Field(description="2-D convolution")
    filters: Size = Field(description="Number of output channels.")
    kernel: Pair = Field(description="Kernel size: an integer or [height, width].")
    stride: Pair = Field((1, 1), description="Stride: an integer or [height, width].")
    padding: Padding = Field("valid", description=_PADDING)
    dilation: Pair = Field((1, 1), description="Dilation rate: an integer or [height, width].")
    groups: Size = Field(
        1, description="Split input and output channels into this many groups, each "
        "convolved separately (PyTorch / Keras groups); must divide both channel counts.")
    bias: bool = Field(True, description="Add a learned bias per output channel.")
    activation: Activation | None = Field(None, description="Activation applied after the bias.")

    @property
    def activation_layer(self) -> ActivationLayer | None:
        """The activation applied after the bias, as its layer kind (None for none)."""
        return activation_layer(self.activation)

    def compute_output_shape(self, inputs: tuple[Shape, ...]) -> LayerOutput:
        shape = spatial_input(self.kind, self.single_input(inputs))
        if shape[2] % self.groups or self.filters % self.groups:
            raise ValueError(f"groups {self.groups} must divide both the {shape[2]} input "
                             f"channels and the {self.filters} filters")
        (h, w), pads = window_output(shape, self.padding, self.kernel, self.stride,
                                     self.dilation, "kernel")
        kh, kw = self.kernel
        macs = h * w * self.filters * kh * kw * (shape[2] // self.groups)
        return LayerOutput((h, w, self.filters), macs, pads)

    def build(self, inputs: tuple[Shape, ...]) -> tuple[WeightSlot, ...]:
        kh, kw = self.kernel
        kernel = WeightSlot("kernel", (kh, kw, inputs[0][-1] // self.groups, self.filters),
                            init="weights")
        if not self.bias:
            return (kernel,)
        return kernel, WeightSlot("bias", (self.filters,), init="biases")


class DepthwiseConv2D(BaseLayer):
    """Depthwise 2-D convolution (Keras ``DepthwiseConv2D``): each input channel convolved
    with its own ``depth_multiplier`` kernels; kernel stored as ``(kh, kw, in, multiplier)``,
    output channel ``c * multiplier + j`` from input channel ``c`` and kernel ``j``."""

    name_prefix: ClassVar[str] = "dwconv"
    has_weights: ClassVar[bool] = True

    kind: Literal["depthwise_conv2d"] = Field(
        description="Depthwise 2-D convolution (one filter per input channel)")
    kernel: Pair = Field(description="Kernel size: an integer or [height, width].")
    stride: Pair = Field((1, 1), description="Stride: an integer or [height, width].")
    padding: Padding = Field("valid", description=_PADDING)
    dilation: Pair = Field((1, 1), description="Dilation rate: an integer or [height, width].")
    depth_multiplier: Size = Field(
        1, description="Output channels per input channel (Keras depth_multiplier).")
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
        channels = shape[2] * self.depth_multiplier
        return LayerOutput((h, w, channels), h * w * channels * kh * kw, pads)

    def build(self, inputs: tuple[Shape, ...]) -> tuple[WeightSlot, ...]:
        kh, kw = self.kernel
        channels = inputs[0][-1]
        kernel = WeightSlot("kernel", (kh, kw, channels, self.depth_multiplier),
                            init="weights")
        if not self.bias:
            return (kernel,)
        return kernel, WeightSlot("bias", (channels * self.depth_multiplier,), init="biases")
