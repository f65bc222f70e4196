"""Layer models of the spec language: one strict pydantic model per layer kind.

The layer list is a discriminated union on ``kind`` so pydantic reports errors as
``layers[3].conv2d.filters`` and the JSON Schema lists exactly what each kind accepts.
Numeric semantics (padding, pooling, leaky ReLU slope, batch-norm momentum) are the
TensorFlow 1 tutorial's; both backends implement them as documented here.
"""

# No ``from __future__ import annotations`` here or in model.py: pydantic would have to evaluate
# every annotation string again when it builds the models, which slows down every command.
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "softmax")
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _pair(value: Any) -> tuple[int, int]:
    """Accept ``5`` or ``[5, 3]`` (height, width) of positive integers."""
    if isinstance(value, bool):
        raise PydanticCustomError("pair", "must be a positive integer or [height, width], got {v}",
                                  {"v": repr(value)})
    if isinstance(value, int):
        value = [value, value]
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return (value[0], value[1])
    raise PydanticCustomError("pair", "must be a positive integer or [height, width] of positive "
                              "integers, got {v}", {"v": repr(value)})


def _padding(value: Any) -> str | tuple[int, int]:
    """Accept ``same``, ``valid``, ``2`` or ``[2, 1]`` (non-negative explicit padding)."""
    if isinstance(value, str):
        if value.lower() in ("same", "valid"):
            return value.lower()
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return (value, value)
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        return (value[0], value[1])
    raise PydanticCustomError(
        "padding",
        "must be 'same', 'valid', a non-negative integer or [height, width], got {v}",
        {"v": repr(value)},
    )


_Two = Field(min_length=2, max_length=2)
_PairInput = Annotated[int, Field(gt=0)] | Annotated[list[Annotated[int, Field(gt=0)]], _Two]
_PadInput = (
    Literal["same", "valid"]
    | Annotated[int, Field(ge=0)]
    | Annotated[list[Annotated[int, Field(ge=0)]], _Two]
)
Pair = Annotated[tuple[int, int], BeforeValidator(_pair, json_schema_input_type=_PairInput)]
Padding = Annotated[
    Literal["same", "valid"] | tuple[int, int],
    BeforeValidator(_padding, json_schema_input_type=_PadInput),
]
Activation = Literal["relu", "tanh", "sigmoid", "leaky_relu", "softmax"]


class _Layer(BaseModel):
    # Built as part of Spec's schema (model.py), not one by one at import; a layer model used on
    # its own (``Conv2D.model_validate``) builds itself on first use.
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=False,
                              defer_build=True)

    name: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="Stable layer name (weights and activations are keyed by it); "
        "default: kind prefix + counter, e.g. conv1, pool2, fc1.",
    )

    @property
    def has_weights(self) -> bool:
        return False


class Conv2D(_Layer):
    """2-D convolution, NHWC; kernel stored as HWIO."""

    kind: Literal["conv2d"] = Field(description="2-D convolution")
    filters: int = Field(gt=0, description="Number of output channels.")
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
    def has_weights(self) -> bool:
        return True


class _Pool(_Layer):
    size: Pair = Field((2, 2), description="Pooling window: an integer or [height, width].")
    stride: Pair | None = Field(None, description="Stride; default: the window size.")
    padding: Padding = Field(
        "valid",
        description="'same' (TensorFlow: output = ceil(input/stride)), 'valid', or explicit "
        "padding per side. Padded cells are ignored: never the max, not counted in the average.",
    )

    @property
    def strides(self) -> tuple[int, int]:
        return self.stride or self.size


class MaxPool(_Pool):
    """Max pooling."""

    kind: Literal["maxpool"] = Field(description="2-D max pooling")


class AvgPool(_Pool):
    """Average pooling over the unpadded cells of each window."""

    kind: Literal["avgpool"] = Field(description="2-D average pooling")


class ReLU(_Layer):
    kind: Literal["relu"] = Field(description="max(x, 0)")


class Tanh(_Layer):
    kind: Literal["tanh"] = Field(description="tanh(x)")


class Sigmoid(_Layer):
    kind: Literal["sigmoid"] = Field(description="1 / (1 + exp(-x))")


class LeakyReLU(_Layer):
    kind: Literal["leaky_relu"] = Field(description="x if x > 0 else alpha * x")
    alpha: float = Field(0.2, ge=0, description="Slope for x < 0 (tf.nn.leaky_relu default 0.2).")


class Softmax(_Layer):
    kind: Literal["softmax"] = Field(description="Softmax over the last axis (channels).")


class Flatten(_Layer):
    """Flatten HxWxC to one vector in H, W, C order (the tutorial's layout)."""

    kind: Literal["flatten"] = Field(description="Flatten in H, W, C order")


class Dense(_Layer):
    """Fully connected layer; kernel stored as (inputs, units)."""

    kind: Literal["dense"] = Field(description="Fully connected layer")
    units: int = Field(gt=0, description="Number of outputs.")
    bias: bool = Field(True, description="Add a learned bias per unit.")
    activation: Activation | None = Field(None, description="Activation applied after the bias.")

    @property
    def has_weights(self) -> bool:
        return True


class Dropout(_Layer):
    """Inverted dropout: active in training only, identity in evaluation."""

    kind: Literal["dropout"] = Field(description="Dropout (training only)")
    rate: float = Field(ge=0, lt=1, description="Fraction of inputs dropped, in [0, 1).")


class BatchNorm(_Layer):
    """Batch normalization over the channel (last) axis, Keras semantics."""

    kind: Literal["batchnorm"] = Field(description="Batch normalization over channels")
    momentum: float = Field(
        0.99, gt=0, lt=1,
        description="Moving-average momentum, Keras convention: new = m * old + (1 - m) * batch.",
    )
    epsilon: float = Field(1e-3, gt=0, description="Added to the variance.")

    @property
    def has_weights(self) -> bool:
        return True


Layer = Annotated[
    Conv2D | MaxPool | AvgPool | ReLU | Tanh | Sigmoid | LeakyReLU | Softmax | Flatten | Dense
    | Dropout | BatchNorm,
    Field(discriminator="kind"),
]

LAYER_KINDS: tuple[str, ...] = (
    "conv2d", "maxpool", "avgpool", "relu", "tanh", "sigmoid", "leaky_relu", "softmax",
    "flatten", "dense", "dropout", "batchnorm",
)
ACTIVATION_KINDS = frozenset(ACTIVATIONS)

# Prefix for automatic names: conv1, pool1, fc1 ... as in the tutorial.
NAME_PREFIX = {
    "conv2d": "conv", "maxpool": "pool", "avgpool": "pool", "relu": "relu", "tanh": "tanh",
    "sigmoid": "sigmoid", "leaky_relu": "leaky_relu", "softmax": "softmax",
    "flatten": "flatten", "dense": "fc", "dropout": "dropout", "batchnorm": "bn",
}
