"""What every layer declaration shares: the base model, its shape and weight contract, and the
field types several kinds use (``Pair``, ``Padding``, ``NAME_PATTERN``).

A layer kind is one strict pydantic model (``extra="forbid"``) that also carries, Keras-style,
its own rules: ``compute_output_shape`` (output shape, padding amounts and MACs from the
incoming shapes) and ``build`` (its weight slots). Interpreters (NumPy, torch, TensorFlow,
ONNX) read both from the shape table and only map ``kind -> op``.
"""

# No ``from __future__ import annotations`` in this package: pydantic would have to evaluate
# every annotation string again when it builds the models, which slows down every command.
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ..limits import number_text
from ..specification.types import MAX_SIZE, Count, Size

Shape = tuple[int, ...]
Pads = tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
LayerName = Annotated[str, Field(pattern=NAME_PATTERN)]
Init = Literal["weights", "biases", "ones", "zeros"]


@dataclass(frozen=True)
class WeightSlot:
    """One weight tensor a layer declares.

    ``name`` is the slot (``kernel``, ``gamma`` ...; the canonical weight name is
    ``<layer>/<slot>``), ``shape`` its canonical shape, ``trainable`` whether the optimizer
    updates it (batch-norm moving statistics are not trainable) and ``init`` where its
    initial value comes from: ``weights`` / ``biases`` (the spec's ``init.weights`` /
    ``init.biases``), ``ones`` or ``zeros``.
    """

    name: str
    shape: Shape
    trainable: bool = True
    init: Init = "zeros"

    @property
    def size(self) -> int:
        """Number of scalars."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class LayerOutput:
    """What a layer's shape rule computes: output shape (HxWxC or (units,)), multiply-
    accumulates per image, and the (before, after) zero padding per spatial axis of window
    layers (TensorFlow SAME semantics, see ``convspec.shapes``)."""

    shape: Shape
    macs: int = 0
    pads: Pads | None = None


class InputsError(ValueError):
    """A shape rule's complaint about particular inputs of a layer. The rule words it from the
    inputs' names (``describe(names)``); the shape table, which knows the names, fills them in
    (``str()`` of the error alone says "input 1", "input 2" ...)."""

    def __init__(self, count: int, describe: Callable[[Sequence[str]], str]):
        super().__init__(describe([f"input {i + 1}" for i in range(count)]))
        self.describe = describe


def kind_of(cls: type[BaseModel]) -> str:
    """The ``kind`` tag of a layer model class (the value of its ``Literal`` field)."""
    return typing.get_args(cls.model_fields["kind"].annotation)[0]


def _int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_SIZE


def _too_large(value: Any, low: int, error: str) -> None:
    """A bounded-size error when the only problem is an integer beyond ``MAX_SIZE``."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    whole = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= low]
    if len(whole) == len(values) and len(values) in (1, 2) and max(values) > MAX_SIZE:
        raise PydanticCustomError(error, "must be at most {max}, got {v}",
                                  {"max": f"{MAX_SIZE:,}", "v": number_text(max(values))})


def _pair(value: Any) -> tuple[int, int]:
    """Accept ``5`` or ``[5, 3]`` (height, width) of positive integers."""
    if isinstance(value, bool):
        raise PydanticCustomError("pair", "must be a positive integer or [height, width], got {v}",
                                  {"v": repr(value)})
    if isinstance(value, int):
        value = [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_int(v, 1) for v in value):
        return (value[0], value[1])
    _too_large(value, 1, "pair")
    raise PydanticCustomError("pair", "must be a positive integer or [height, width] of positive "
                              "integers, got {v}", {"v": repr(value)})


def _padding(value: Any) -> str | tuple[int, int]:
    """Accept ``same``, ``valid``, ``2`` or ``[2, 1]`` (non-negative explicit padding)."""
    if isinstance(value, str):
        if value.lower() in ("same", "valid"):
            return value.lower()
    elif _int(value, 0):
        return (value, value)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_int(v, 0) for v in value):
        return (value[0], value[1])
    _too_large(value, 0, "padding")
    raise PydanticCustomError(
        "padding",
        "must be 'same', 'valid', a non-negative integer or [height, width], got {v}",
        {"v": repr(value)},
    )


_Two = Field(min_length=2, max_length=2)
_PairInput = Size | Annotated[list[Size], _Two]
_PadInput = Literal["same", "valid"] | Count | Annotated[list[Count], _Two]
Pair = Annotated[tuple[int, int], BeforeValidator(_pair, json_schema_input_type=_PairInput)]
"""A positive size per spatial axis: ``5`` or ``[height, width]``, read as (height, width)."""
Padding = Annotated[
    Literal["same", "valid"] | tuple[int, int],
    BeforeValidator(_padding, json_schema_input_type=_PadInput),
]
"""``same``, ``valid`` or explicit symmetric zero padding: ``2`` or ``[height, width]``."""


class BaseLayer(BaseModel):
    """Base of every layer kind: its ``name`` field and the declaration contract.

    Subclasses add ``kind: Literal[...]`` (the union's tag), their fields, the ClassVar
    ``name_prefix`` (automatic names: conv1, pool1, fc1 ... as in the tutorial) and, where the
    defaults do not fit, ``compute_output_shape`` and ``build``.
    """

    # Built as part of Spec's schema (specification/model.py), not one by one at import; a
    # layer model used on its own (``Conv2D.model_validate``) builds itself on first use.
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=False,
                              defer_build=True)

    name_prefix: ClassVar[str]
    has_weights: ClassVar[bool] = False
    # Fields added after networks were first fingerprinted, with the value that means "as
    # before": left out of the fingerprint at that value, so existing weights files load.
    added_later: ClassVar[dict[str, Any]] = {}

    name: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="Stable layer name (weights and activations are keyed by it); "
        "default: kind prefix + counter, e.g. conv1, pool2, fc1.",
    )
    inputs: Annotated[list[LayerName], Field(min_length=1)] | None = Field(
        None,
        description="The layers whose outputs this layer takes, by name ('input' is the "
        "image); default: the previous layer. Merge layers (add, concat) take two or more.",
    )

    def single_input(self, inputs: tuple[Shape, ...]) -> Shape:
        """The one incoming shape of a single-input kind; ValueError for any other count."""
        if len(inputs) != 1:
            raise ValueError(f"{self.kind} takes exactly one input, got {len(inputs)}; "
                             f"merge inputs first with add or concat")
        return inputs[0]

    def compute_output_shape(self, inputs: tuple[Shape, ...]) -> LayerOutput:
        """Output shape, MACs per image and pads for the incoming shapes (one per input);
        ValueError with the reason when the layer cannot apply. Default: one input, shape
        unchanged, no MACs (element-wise kinds)."""
        return LayerOutput(self.single_input(inputs))

    def build(self, inputs: tuple[Shape, ...]) -> tuple[WeightSlot, ...]:
        """The weight slots for these incoming shapes, in canonical order (default: none).
        Called only after ``compute_output_shape`` accepted the shapes."""
        return ()

    def resolved(self, pads: Pads | None) -> dict[str, Any]:
        """The hyper-parameters that make this layer what it is, as JSON data: every field
        with defaults filled in except ``name`` and ``inputs`` (the fingerprint records the
        connections itself); ``padding`` as the resolved ``pads`` (so ``same`` and the equal
        explicit pads are the same layer)."""
        data = self.model_dump(mode="json", exclude={"name", "inputs"})
        for field, value in self.added_later.items():
            if data.get(field) == value:
                del data[field]
        if "padding" in data and pads is not None:
            data["padding"] = [list(p) for p in pads]
        return data
