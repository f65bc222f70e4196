"""Merge kinds (Keras ``layers/merging``): add and concat, the joins of a graph.

A merge takes two or more inputs, named in its ``inputs:``. Its shape rule words a mismatch
from the inputs' names (``InputsError``), so the message says which layers disagree.
"""

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field

from ..shapes import format_shape
from .base import BaseLayer, InputsError, LayerOutput, Shape


class Merge(BaseLayer):
    """Base of the merge kinds: two or more inputs, no weights."""

    def merged_inputs(self, inputs: tuple[Shape, ...]) -> tuple[Shape, ...]:
        """The incoming shapes; ValueError unless there are at least two."""
        if len(inputs) < 2:
            raise ValueError(f"{self.kind} merges two or more inputs, got {len(inputs)}; "
                             f"name them, e.g. inputs: [conv2, input]")
        return inputs


def _add_hint(a: Shape, b: Shape) -> str:
    if len(a) == len(b) == 3 and a[:2] != b[:2]:
        return ("; a stride or pooling on one branch only? Give the other branch the same "
                "downsampling, e.g. a 1x1 conv2d with that stride")
    if len(a) == len(b) and a[:-1] == b[:-1]:
        return "; project the narrower branch with a 1x1 conv2d to the other's channels"
    return ""


class Add(Merge):
    """Element-wise sum of inputs of one shape (Keras ``Add``): the join of a residual block."""

    name_prefix: ClassVar[str] = "add"

    kind: Literal["add"] = Field(description="Element-wise sum of two or more same-shape inputs")

    def compute_output_shape(self, inputs: tuple[Shape, ...]) -> LayerOutput:
        first, *rest = self.merged_inputs(inputs)
        for index, shape in enumerate(rest, 1):
            if shape != first:
                def describe(names: Sequence[str], i: int = index, s: Shape = shape) -> str:
                    return (f"add needs inputs of one shape, but {names[0]} is "
                            f"{format_shape(first)} and {names[i]} is {format_shape(s)}"
                            f"{_add_hint(first, s)}")
                raise InputsError(len(inputs), describe)
        return LayerOutput(first)


class Concat(Merge):
    """Inputs joined along the channel (last) axis (Keras ``Concatenate``): HxW must match;
    flat inputs join end to end."""

    name_prefix: ClassVar[str] = "concat"

    kind: Literal["concat"] = Field(
        description="Join two or more inputs along the channel axis (same height and width)")

    def compute_output_shape(self, inputs: tuple[Shape, ...]) -> LayerOutput:
        first, *rest = self.merged_inputs(inputs)
        for index, shape in enumerate(rest, 1):
            if len(shape) != len(first) or shape[:-1] != first[:-1]:
                def describe(names: Sequence[str], i: int = index, s: Shape = shape) -> str:
                    what = ("the same height and width" if len(s) == len(first) == 3
                            else "the same rank (all HxWxC or all flat)")
                    return (f"concat joins inputs along the channel axis, so they need "
                            f"{what}, but {names[0]} is {format_shape(first)} and {names[i]} "
                            f"is {format_shape(s)}")
                raise InputsError(len(inputs), describe)
        return LayerOutput((*first[:-1], sum(shape[-1] for shape in inputs)))
