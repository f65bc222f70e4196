"""Activation kinds: element-wise, one input, shape unchanged, no weights (Keras
``layers/activations``).

These classes are the one declaration of the activation names: the ``activation:`` field of
conv2d and dense (``Activation``) allows exactly their kinds, and applies the same op with the
kind's defaults (``activation_layer``).
"""

import functools
from typing import ClassVar, Literal

from pydantic import Field

from ..specification.types import FiniteFloat
from .base import BaseLayer, kind_of


class ActivationLayer(BaseLayer):
    """Base of the activation kinds: BaseLayer's element-wise shape rule, no weights."""


class ReLU(ActivationLayer):
    name_prefix: ClassVar[str] = "relu"
    kind: Literal["relu"] = Field(description="max(x, 0)")


class ReLU6(ActivationLayer):
    name_prefix: ClassVar[str] = "relu6_"  # relu6_1, not relu61
    kind: Literal["relu6"] = Field(description="min(max(x, 0), 6) (MobileNet)")


class Tanh(ActivationLayer):
    name_prefix: ClassVar[str] = "tanh"
    kind: Literal["tanh"] = Field(description="tanh(x)")


class Sigmoid(ActivationLayer):
    name_prefix: ClassVar[str] = "sigmoid"
    kind: Literal["sigmoid"] = Field(description="1 / (1 + exp(-x))")


class LeakyReLU(ActivationLayer):
    name_prefix: ClassVar[str] = "leaky_relu"
    kind: Literal["leaky_relu"] = Field(description="x if x > 0 else alpha * x")
    alpha: FiniteFloat = Field(0.2, ge=0,
                               description="Slope for x < 0 (tf.nn.leaky_relu default 0.2).")


class Softmax(ActivationLayer):
    name_prefix: ClassVar[str] = "softmax"
    kind: Literal["softmax"] = Field(description="Softmax over the last axis (channels).")


ACTIVATION_LAYERS: tuple[type[ActivationLayer], ...] = (ReLU, ReLU6, Tanh, Sigmoid, LeakyReLU,
                                                        Softmax)
ACTIVATIONS: tuple[str, ...] = tuple(kind_of(cls) for cls in ACTIVATION_LAYERS)
Activation = Literal[ACTIVATIONS]  # type: ignore[valid-type]  # the names above, no others


@functools.cache
def activation_layer(name: str | None) -> ActivationLayer | None:
    """The activation kind ``name`` with its defaults: what ``activation: name`` of a conv2d
    or dense layer applies after the bias (None for no activation)."""
    if name is None:
        return None
    cls = dict(zip(ACTIVATIONS, ACTIVATION_LAYERS))[name]
    return cls.model_construct(kind=name)
