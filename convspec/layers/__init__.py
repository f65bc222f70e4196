"""The registry of layer kinds: each kind is declared once, next to its spec model.

A declaration (one pydantic model in its family module, Keras-style) carries the kind's fields,
its automatic-name prefix, its shape rule (``compute_output_shape``: output shape, padding
amounts and MACs) and its weight slots (``build``: name, canonical shape, trainable or not,
initialiser). The spec's ``layers`` list is the discriminated union ``Layer`` of the classes
below, in this order; every interpreter (``backends/reference.py``, ``backends/torch``,
``backends/tensorflow``, ``export/onnx_format.py``) maps each kind to one op.
"""

from typing import Annotated, Union

from pydantic import Field

from ..errors import ConvspecError
from ..graph import IMAGE_INPUT
from .activation import (
    ACTIVATIONS,
    Activation,
    LeakyReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
    Tanh,
)
from .base import BaseLayer, InputsError, LayerOutput, Pads, Shape, WeightSlot, kind_of
from .convolution import Conv2D, DepthwiseConv2D
from .core import Dense, Dropout, Flatten, Identity
from .merging import Add, Concat, Merge
from .normalization import BatchNorm
from .pooling import AvgPool, GlobalAvgPool, MaxPool, Pooling

LAYER_CLASSES: tuple[type[BaseLayer], ...] = (
    Conv2D, MaxPool, AvgPool, ReLU, Tanh, Sigmoid, LeakyReLU, Softmax, Flatten, Dense, Dropout,
    BatchNorm, DepthwiseConv2D, GlobalAvgPool, ReLU6, Identity, Add, Concat,
)
LAYER_KINDS: tuple[str, ...] = tuple(kind_of(cls) for cls in LAYER_CLASSES)
"""Every layer kind, in the order of the union (and of the JSON Schema)."""

Layer = Annotated[Union[LAYER_CLASSES], Field(discriminator="kind")]  # noqa: UP007
"""One entry of a spec's ``layers`` list: the model of its ``kind``."""

_BY_KIND = dict(zip(LAYER_KINDS, LAYER_CLASSES))


class UnknownLayerKindError(ConvspecError):
    """A layer kind that is not registered; the message lists the registered ones."""


def list_layer_kinds() -> list[str]:
    """The registered layer kinds, in registry order."""
    return list(LAYER_KINDS)


def layer_class(kind: str) -> type[BaseLayer]:
    """The model class of layer ``kind``; UnknownLayerKindError listing the kinds there are."""
    try:
        return _BY_KIND[kind]
    except (KeyError, TypeError):
        import difflib  # only a miss needs it

        close = difflib.get_close_matches(str(kind), LAYER_KINDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise UnknownLayerKindError(f"unknown layer kind {kind!r}{hint} Registered kinds: "
                                    f"{', '.join(LAYER_KINDS)}") from None


__all__ = [
    "ACTIVATIONS", "IMAGE_INPUT", "Activation", "Add", "AvgPool", "BaseLayer", "BatchNorm",
    "Concat", "Conv2D", "Dense", "DepthwiseConv2D", "Dropout", "Flatten", "GlobalAvgPool",
    "Identity", "InputsError", "LAYER_CLASSES", "LAYER_KINDS", "Layer", "LayerOutput",
    "LeakyReLU", "MaxPool", "Merge", "Pads", "Pooling", "ReLU", "ReLU6", "Shape", "Sigmoid",
    "Softmax", "Tanh", "UnknownLayerKindError", "WeightSlot", "kind_of", "layer_class",
    "list_layer_kinds",
]
