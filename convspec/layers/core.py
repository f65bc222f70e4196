"""Core kinds (Keras ``layers/core`` and ``layers/reshaping``): flatten, dense, dropout,
identity."""

from typing import ClassVar, Literal

from pydantic import Field

from ..shapes import format_shape
from ..specification.types import FiniteFloat, Size
from .activation import Activation, ActivationLayer, activation_layer
from .base import BaseLayer, LayerOutput, Shape, WeightSlot


class Flatten(BaseLayer):
    """Flatten HxWxC to one vector in H, W, C order (the tutorial's layout)."""

    name_prefix: ClassVar[str] = "flatten"

    kind: Literal["flatten"] = Field(description="Flatten in H, W, C order")

    def compute_output_shape(self, inputs: tuple[Shape, ...]) -> LayerOutput:
        shape = self.single_input(inputs)
        if len(shape) != 3:
            raise ValueError(f"flatten needs an HxWxC input but gets a flat vector of "
                             f"{shape[0]}; the input is already flat (flatten appears twice?)")
        return LayerOutput((shape[0] * shape[1] * shape[2],))


class Dense(BaseLayer):
    """Fully connected layer; kernel stored as (inputs, units)."""

    name_prefix: ClassVar[str] = "fc"
    has_weights: ClassVar[bool] = True

    kind: Literal["dense"] = Field(description="Fully connected layer")
    units: Size = Field(description="Number of outputs.")
    bias: bool = Field(True, description="Add a learned bias per unit.")
    activation: Activation | None = Field(None, description="Activation applied after the bias.")

    @property
    def activation_layer(self) -> ActivationLayer | None:
        """The activation applied after the bias, as its layer kind (None for none)."""
        return activation_layer(self.activation)

    def compute_output_shape(self, inputs: tuple[Shape, ...]) -> LayerOutput:
        shape = self.single_input(inputs)
        if len(shape) != 1:
            raise ValueError(f"dense needs a flat input but gets {format_shape(shape)}; "
                             f"add '- kind: flatten' before it")
        return LayerOutput((self.units,), shape[0] * self.units)

    def build(self, inputs: tuple[Shape, ...]) -> tuple[WeightSlot, ...]:
        kernel = WeightSlot("kernel", (inputs[0][0], self.units), init="weights")
        if not self.bias:
            return (kernel,)
        return kernel, WeightSlot("bias", (self.units,), init="biases")


class Dropout(BaseLayer):
    """Inverted dropout: active in training only, identity in evaluation."""

    name_prefix: ClassVar[str] = "dropout"

    kind: Literal["dropout"] = Field(description="Dropout (training only)")
    rate: FiniteFloat = Field(ge=0, lt=1, description="Fraction of inputs dropped, in [0, 1).")


class Identity(BaseLayer):
    """The input, unchanged (Keras ``Identity``, ``torch.nn.Identity``): a named point in the
    graph, e.g. a shortcut that several layers take."""

    name_prefix: ClassVar[str] = "identity"

    kind: Literal["identity"] = Field(description="The input, unchanged")
