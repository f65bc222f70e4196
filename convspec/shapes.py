"""Framework-free shape inference: pure tuple arithmetic, TensorFlow padding semantics.

This is the only place that computes output sizes and padding amounts; backends read the
padding they need from the table (``LayerShape.pads``) and tests compare what each backend
builds against it.

SAME:  out = ceil(in / stride), total padding = max((out - 1) * stride + k_eff - in, 0),
       with the smaller half before (top/left) and the larger after (bottom/right).
VALID: out = ceil((in - k_eff + 1) / stride).
int p: out = floor((in + 2p - k_eff) / stride) + 1.
where k_eff = (k - 1) * dilation + 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ConvspecError

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
    """One row of the shape table."""

    index: int
    name: str
    kind: str
    input: Shape
    output: Shape
    params: int
    macs: int
    pads: tuple[tuple[int, int], tuple[int, int]] | None = None  # ((top, bottom), (left, right))


@dataclass(frozen=True)
class ShapeTable:
    input: Shape
    rows: list[LayerShape] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def flops(self) -> int:
        """Forward FLOPs per image (2 per multiply-accumulate)."""
        return 2 * self.macs

    def __getitem__(self, name: str) -> LayerShape:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": list(self.input),
            "layers": [
                {**asdict(r), "input": list(r.input), "output": list(r.output),
                 "pads": [list(p) for p in r.pads] if r.pads is not None else None}
                for r in self.rows
            ],
            "params": self.params,
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


def _spatial(layer: Any, shape: Shape, kernel: tuple[int, int], stride: tuple[int, int],
             dilation: tuple[int, int], what: str) -> tuple[Shape, tuple]:
    if len(shape) != 3:
        raise ValueError(
            f"{layer.kind} needs an HxWxC input but gets a flat vector of {shape[0]}; "
            f"convolution and pooling layers must come before flatten"
        )
    padding = layer.padding
    if what == "window" and not isinstance(padding, str) and \
            any(p >= k for p, k in zip(padding, kernel)):
        raise ValueError(
            f"pooling padding {list(padding)} must be smaller than the window "
            f"{format_shape(kernel)}, or some windows would hold only padding"
        )
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
    return (outs[0], outs[1], shape[2] if what == "window" else layer.filters), tuple(pads)


def _pad_text(padding: Any) -> str:
    return repr(padding) if isinstance(padding, str) else f"{list(padding)}"


def _layer_shape(layer: Any, shape: Shape) -> tuple[Shape, int, int, tuple | None]:
    """(output shape, params, MACs, pads) of one layer, or ValueError with the reason."""
    kind = layer.kind
    if kind == "conv2d":
        out, pads = _spatial(layer, shape, layer.kernel, layer.stride, layer.dilation, "kernel")
        kh, kw = layer.kernel
        fan = kh * kw * shape[2]
        params = fan * layer.filters + (layer.filters if layer.bias else 0)
        return out, params, out[0] * out[1] * out[2] * fan, pads
    if kind in ("maxpool", "avgpool"):
        out, pads = _spatial(layer, shape, layer.size, layer.strides, (1, 1), "window")
        return out, 0, 0, pads
    if kind == "flatten":
        if len(shape) != 3:
            raise ValueError(f"flatten needs an HxWxC input but gets a flat vector of "
                             f"{shape[0]}; the input is already flat (flatten appears twice?)")
        return (shape[0] * shape[1] * shape[2],), 0, 0, None
    if kind == "dense":
        if len(shape) != 1:
            raise ValueError(f"dense needs a flat input but gets {format_shape(shape)}; "
                             f"add '- kind: flatten' before it")
        params = shape[0] * layer.units + (layer.units if layer.bias else 0)
        return (layer.units,), params, shape[0] * layer.units, None
    if kind == "batchnorm":
        return shape, 4 * shape[-1], 0, None  # gamma, beta, moving mean, moving variance
    return shape, 0, 0, None  # activations and dropout keep the shape


def infer_shapes(spec: Any) -> ShapeTable:
    """Per-layer output shapes, parameter counts and MACs; ShapeError at the first bad layer."""
    shape: Shape = (spec.input.height, spec.input.width, spec.input.channels)
    table = ShapeTable(input=shape)
    for index, layer in enumerate(spec.layers):
        try:
            out, params, macs, pads = _layer_shape(layer, shape)
        except ValueError as exc:
            raise ShapeError(index, str(exc), list(table.rows)) from None
        table.rows.append(LayerShape(index, layer.name or layer.kind, layer.kind, shape, out,
                                     params, macs, pads))
        shape = out
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


def format_table(table: ShapeTable, *, totals: bool = True) -> str:
    """A plain-text table: name, kind, output shape, params, MACs."""
    head = ("layer", "kind", "output", "params", "MACs")
    body = [("input", "", format_shape(table.input), "", "")]
    body += [(r.name, r.kind, format_shape(r.output), f"{r.params:,}", f"{r.macs:,}")
             for r in table.rows]
    if totals:
        body.append(("total", "", "", f"{table.params:,}", f"{table.macs:,}"))
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(5)]
    right = {3, 4}

    def fmt(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=False))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [fmt(head), rule, *(fmt(r) for r in body)]
    if totals:
        lines.insert(-1, rule)
    return "\n".join(lines)
