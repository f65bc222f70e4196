"""Framework-free shape inference: pure tuple arithmetic, TensorFlow padding semantics.

Each layer kind's shape rule is declared with it (``convspec.layers``: ``compute_output_shape``
and ``build``); the window arithmetic those rules delegate to lives here, the only place that
computes output sizes and padding amounts. The table is computed once per spec and cached on
it (``Spec.table``); backends read the padding they need (``LayerShape.pads``) and the weight
slots (``LayerShape.slots``) from it, and tests compare what each backend builds against it.

SAME:  out = ceil(in / stride), total padding = max((out - 1) * stride + k_eff - in, 0),
       with the smaller half before (top/left) and the larger after (bottom/right).
VALID: out = ceil((in - k_eff + 1) / stride).
int p: out = floor((in + 2p - k_eff) / stride) + 1.
where k_eff = (k - 1) * dilation + 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConvspecError

if TYPE_CHECKING:
    from .layers import WeightSlot

Shape = tuple[int, ...]


class ShapeError(ConvspecError):
    """A layer cannot be applied to its incoming shape; carries the rows computed so far."""

    def __init__(self, index: int, message: str, rows: list[LayerShape]):
        super().__init__(message)
        self.index = index
        self.message = message
        self.rows = rows


@dataclass(frozen=True)
class LayerShape:
    """One row of the shape table: a layer (a node of the graph) with the outputs it takes
    (``inputs``, ``input_shapes``; ``input`` is the first one's shape), its output shape,
    parameter count (every weight slot, trainable or not), MACs per image and pads."""

    index: int
    name: str
    kind: str
    input: Shape
    output: Shape
    params: int
    macs: int
    pads: tuple[tuple[int, int], tuple[int, int]] | None = None  # ((top, bottom), (left, right))
    slots: tuple[WeightSlot, ...] = ()  # the layer's declared weights, in canonical order
    inputs: tuple[str, ...] = ()  # the layers it takes, by name ("input": the image)
    input_shapes: tuple[Shape, ...] = ()  # their output shapes, in that order

    @property
    def weights(self) -> dict[str, WeightSlot]:
        """Canonical weight name (``<layer>/<slot>``) -> slot, in the declared order."""
        return {weight_name(self.name, slot.name): slot for slot in self.slots}


def weight_name(layer: str, slot: str) -> str:
    """The canonical name of a layer's weight slot: ``conv1/kernel``, ``bn1/moving_mean``."""
    return f"{layer}/{slot}"


@dataclass(frozen=True)
class ShapeTable:
    input: Shape
    rows: list[LayerShape] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        """Scalars the optimizer updates (Keras's "Trainable params")."""
        return sum(s.size for r in self.rows for s in r.slots if s.trainable)

    @property
    def non_trainable_params(self) -> int:
        """Scalars held but not trained, e.g. batch-norm moving statistics."""
        return sum(s.size for r in self.rows for s in r.slots if not s.trainable)

    @property
    def weights(self) -> dict[str, WeightSlot]:
        """Every canonical weight name -> its slot, in layer order."""
        return {name: slot for row in self.rows for name, slot in row.weights.items()}

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def flops(self) -> int:
        """Forward FLOPs per image (2 per multiply-accumulate)."""
        return 2 * self.macs

    @property
    def is_stack(self) -> bool:
        """True when every layer takes the previous one (the image for the first)."""
        previous = ["input", *(r.name for r in self.rows)]
        return all(r.inputs in ((), (previous[i],)) for i, r in enumerate(self.rows))

    def __getitem__(self, name: str) -> LayerShape:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": list(self.input),
            "layers": [
                {"index": r.index, "name": r.name, "kind": r.kind, "inputs": list(r.inputs),
                 "input": list(r.input), "output": list(r.output), "params": r.params,
                 "macs": r.macs,
                 "pads": [list(p) for p in r.pads] if r.pads is not None else None}
                for r in self.rows
            ],
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "flops": self.flops,
        }


def format_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def effective_kernel(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation + 1


def output_size(size: int, kernel: int, stride: int, padding: str | int,
                dilation: int = 1) -> tuple[int, int, int]:
    """Output size and (before, after) padding for one spatial dimension."""
    k = effective_kernel(kernel, dilation)
    if padding == "same":
        out = -(-size // stride)  # ceil in integers: exact for any size, never overflows
        total = max((out - 1) * stride + k - size, 0)
        return out, total // 2, total - total // 2
    if padding == "valid":
        return (-(-(size - k + 1) // stride) if size >= k else 0), 0, 0
    assert isinstance(padding, int)
    padded = size + 2 * padding
    return ((padded - k) // stride + 1 if padded >= k else 0), padding, padding


def single_window_form(output: tuple[int, int], kernel: tuple[int, int],
                       stride: tuple[int, int], dilation: tuple[int, int]
                       ) -> tuple[tuple[int, int], tuple[int | None, int | None]]:
    """The same window op with stride 1 along every axis whose output extent is 1:
    (strides, per axis the extent to crop the padded input to, None where unchanged).

    Along such an axis there is one window, at offset 0 of the padded input, so its stride
    changes nothing; cropping the padded input to that window (``k_eff``) and sliding with
    stride 1 gives the same numbers. Backends use this form because oneDNN's CPU
    convolution, in PyTorch and TensorFlow alike, reads outside its input for one input
    channel, output width 1 and a width stride of 2 or more (``verification``).
    """
    strides, crop = list(stride), [None, None]
    for axis in (0, 1):
        if output[axis] == 1 and stride[axis] > 1:
            strides[axis] = 1
            crop[axis] = effective_kernel(kernel[axis], dilation[axis])
    return (strides[0], strides[1]), (crop[0], crop[1])


def spatial_input(kind: str, shape: Shape) -> Shape:
    """``shape`` if it is HxWxC; else the ValueError a window layer after flatten gets."""
    if len(shape) != 3:
        raise ValueError(
            f"{kind} needs an HxWxC input but gets a flat vector of {shape[0]}; "
            f"convolution and pooling layers must come before flatten"
        )
    return shape


def window_output(shape: Shape, padding: str | tuple[int, int], kernel: tuple[int, int],
                  stride: tuple[int, int], dilation: tuple[int, int],
                  what: str) -> tuple[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]]:
    """((out height, out width), ((top, bottom), (left, right)) pads) of a window sliding
    over the HxWxC ``shape``; ValueError when the output would be empty. ``what`` names the
    window in that message (``kernel`` or ``window``)."""
    outs, pads = [], []
    for axis in (0, 1):
        pad = padding if isinstance(padding, str) else padding[axis]
        out, before, after = output_size(shape[axis], kernel[axis], stride[axis], pad,
                                         dilation[axis])
        outs.append(out)
        pads.append((before, after))
    if min(outs) <= 0:
        keff = [effective_kernel(k, d) for k, d in zip(kernel, dilation, strict=False)]
        raise ValueError(
            f"{what} {format_shape(tuple(keff))} does not fit the {format_shape(shape)} input "
            f"with padding {_pad_text(padding)}; the output would be empty. "
            f"Use padding 'same', a smaller {what}, or remove a downsampling layer before it"
        )
    return (outs[0], outs[1]), (pads[0], pads[1])


def _pad_text(padding: Any) -> str:
    return repr(padding) if isinstance(padding, str) else f"{list(padding)}"


def infer_shapes(spec: Any) -> ShapeTable:
    """Per-layer output shapes, parameter counts and MACs; ShapeError at the first bad layer.

    The table of a ``Spec`` is computed once and kept on it (``spec.table``)."""
    return spec.table


def compute_table(spec: Any) -> ShapeTable:
    """The shape table of ``spec``, computed from each layer's declaration (what
    ``Spec.table`` caches) in the spec's order, which puts every layer after the layers it
    takes (``convspec.graph``); ShapeError, with the rows so far, at the first bad layer."""
    from .graph import IMAGE_INPUT, resolved_inputs
    from .layers import InputsError

    table = ShapeTable(input=(spec.input.height, spec.input.width, spec.input.channels))
    outputs: dict[str, Shape] = {IMAGE_INPUT: table.input}
    for index, (layer, sources) in enumerate(zip(spec.layers, resolved_inputs(spec.layers))):
        shapes = tuple(outputs[source] for source in sources)
        try:
            out = layer.compute_output_shape(shapes)
            slots = layer.build(shapes)
        except InputsError as exc:
            raise ShapeError(index, exc.describe(sources), list(table.rows)) from None
        except ValueError as exc:
            raise ShapeError(index, str(exc), list(table.rows)) from None
        table.rows.append(LayerShape(index, layer.name, layer.kind, shapes[0], out.shape,
                                     sum(s.size for s in slots), out.macs, out.pads, slots,
                                     sources, shapes))
        outputs[layer.name] = out.shape
    _check_classifier_end(spec, table)
    return table


def _check_classifier_end(spec: Any, table: ShapeTable) -> None:
    last = spec.layers[-1]
    index = len(spec.layers) - 1
    out = table.rows[-1].output
    if out != (spec.classes,):
        raise ShapeError(
            index,
            f"the network ends with output {format_shape(out)} but classes is {spec.classes}; "
            f"end with '- kind: dense' with units: {spec.classes} (after a flatten)",
            list(table.rows),
        )
    if last.kind == "softmax" or getattr(last, "activation", None) == "softmax":
        raise ShapeError(
            index,
            "the last layer must output logits: the loss and predictions apply softmax "
            "themselves, so remove the final softmax",
            list(table.rows),
        )
