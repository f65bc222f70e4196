"""ONNX export: the graph written op by op from the spec and the canonical weights.

No framework is involved, so any backend's runs export the same way and the numerics are
convspec's, spelled out:

* the NHWC input ``images`` (batch dimension ``N``) is transposed once to NCHW;
* every padding amount comes from the shape table (TensorFlow SAME: the larger half at the
  bottom/right) as explicit, possibly asymmetric, ``pads``; ONNX pooling never lets a padded
  cell win a max, and ``count_include_pad=0`` keeps padded cells out of an average;
* conv kernels HWIO -> OIHW; dense kernels stay (inputs, units) for ``Gemm``;
* flatten transposes back to NHWC first, so the flat order is H, W, C as in the spec;
* grouped and depthwise convolutions are ``Conv`` with ``group``; a depthwise kernel
  (kh, kw, C, m) is the grouped kernel (kh, kw, 1, C * m);
* batch norm uses the moving statistics (inference mode), dropout is an ``Identity``;
* softmax is over the channel axis (1 in NCHW, the unit axis after flatten); add is ``Sum``,
  concat joins channels (axis 1).

The output is ``logits`` (N, classes). Inferred shapes are checked against the shape table.
Each layer kind is one op in ``OPS``; its input is the tensor of the layer it takes (a tuple of
them for a merge kind), its weights (initializers under their canonical names) arrive in the
order the kind declares them. Nodes are written in the spec's order, a topological order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..graph import IMAGE_INPUT
from ..shapes import LayerShape
from ..specification import Spec

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17: loadable by every runtime that supports it
INPUT, OUTPUT = "images", "logits"
MAX_BYTES = 2_000_000_000  # a single protobuf file holds at most 2 GiB


class _Graph:
    """Nodes and initializers, appended in layer order."""

    def __init__(self, weights: Mapping[str, np.ndarray]):
        self.weights = weights
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(
            np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def activation(self, layer: Any | None, x: str, output: str) -> str:
        """``x`` through the activation layer ``layer`` (an Identity for None)."""
        if layer is None:
            return self.op("Identity", [x], output) if x != output else x
        return ACTIVATIONS[layer.kind](self, layer, x, output)


# Activation kind -> node(s) for it, from its layer model (for its parameters).
ACTIVATIONS: dict[str, Callable[[_Graph, Any, str, str], str]] = {
    "relu": lambda g, layer, x, out: g.op("Relu", [x], out),
    "relu6": lambda g, layer, x, out: g.op("Clip", [x, g.const(f"{out}/min", np.float32(0)),
                                                    g.const(f"{out}/max", np.float32(6))], out),
    "tanh": lambda g, layer, x, out: g.op("Tanh", [x], out),
    "sigmoid": lambda g, layer, x, out: g.op("Sigmoid", [x], out),
    "leaky_relu": lambda g, layer, x, out: g.op("LeakyRelu", [x], out, alpha=float(layer.alpha)),
    # channels: axis 1 in NCHW and in (N, units)
    "softmax": lambda g, layer, x, out: g.op("Softmax", [x], out, axis=1),
}


def tensor_name(name: str) -> str:
    """The tensor holding a layer's output: its name, unless that is the graph's input or
    output name (layer names never contain '/', so the renamed one cannot clash)."""
    return f"{name}/out" if name in (INPUT, OUTPUT) else name


def _pads(row: LayerShape) -> list[int]:
    (top, bottom), (left, right) = row.pads
    return [top, left, bottom, right]  # ONNX: all begins, then all ends


Weight = tuple[str, np.ndarray]  # (canonical name, canonical array)


def _conv(g: _Graph, layer: Any, row: LayerShape, x: str, out: str, kernel: Weight,
          bias: Weight | None, groups: int) -> str:
    inputs = [x, g.const(kernel[0], kernel[1].transpose(3, 2, 0, 1))]  # HWIO -> OIHW
    if bias is not None:
        inputs.append(g.const(*bias))
    act = layer.activation_layer
    y = g.op("Conv", inputs, out if act is None else f"{row.name}/conv",
             kernel_shape=list(layer.kernel), strides=list(layer.stride),
             dilations=list(layer.dilation), pads=_pads(row), group=groups)
    return g.activation(act, y, out)


def _conv2d(g: _Graph, layer: Any, row: LayerShape, x: str, out: str, kernel: Weight,
            bias: Weight | None = None) -> str:
    return _conv(g, layer, row, x, out, kernel, bias, layer.groups)


def _depthwise_conv2d(g: _Graph, layer: Any, row: LayerShape, x: str, out: str,
                      kernel: Weight, bias: Weight | None = None) -> str:
    kh, kw, channels, multiplier = kernel[1].shape
    grouped = (kernel[0], kernel[1].reshape(kh, kw, 1, channels * multiplier))
    return _conv(g, layer, row, x, out, grouped, bias, channels)


def _maxpool(g: _Graph, layer: Any, row: LayerShape, x: str, out: str) -> str:
    # padded cells are ignored by ONNX MaxPool (never the max)
    return g.op("MaxPool", [x], out, kernel_shape=list(layer.size),
                strides=list(layer.strides), pads=_pads(row))


def _avgpool(g: _Graph, layer: Any, row: LayerShape, x: str, out: str) -> str:
    return g.op("AveragePool", [x], out, kernel_shape=list(layer.size),
                strides=list(layer.strides), pads=_pads(row), count_include_pad=0)


def _global_avgpool(g: _Graph, layer: Any, row: LayerShape, x: str, out: str) -> str:
    pooled = g.op("GlobalAveragePool", [x], f"{row.name}/pool")  # (N, C, 1, 1)
    return g.op("Flatten", [pooled], out, axis=1)


def _add(g: _Graph, layer: Any, row: LayerShape, xs: tuple[str, ...], out: str) -> str:
    return g.op("Sum", list(xs), out)


def _concat(g: _Graph, layer: Any, row: LayerShape, xs: tuple[str, ...], out: str) -> str:
    return g.op("Concat", list(xs), out, axis=1)  # channels in NCHW, units when flat


def _flatten(g: _Graph, layer: Any, row: LayerShape, x: str, out: str) -> str:
    nhwc = g.op("Transpose", [x], f"{row.name}/nhwc", perm=[0, 2, 3, 1])
    return g.op("Flatten", [nhwc], out, axis=1)  # H, W, C order


def _dense(g: _Graph, layer: Any, row: LayerShape, x: str, out: str, kernel: Weight,
           bias: Weight | None = None) -> str:
    inputs = [x, g.const(*kernel)]
    if bias is not None:
        inputs.append(g.const(*bias))
    act = layer.activation_layer
    y = g.op("Gemm", inputs, out if act is None else f"{row.name}/gemm")
    return g.activation(act, y, out)


def _batchnorm(g: _Graph, layer: Any, row: LayerShape, x: str, out: str, scale: Weight,
               bias: Weight, mean: Weight, var: Weight) -> str:
    inputs = [x] + [g.const(*weight) for weight in (scale, bias, mean, var)]
    return g.op("BatchNormalization", inputs, out, epsilon=float(layer.epsilon))


def _identity(g: _Graph, layer: Any, row: LayerShape, x: str, out: str) -> str:
    return g.op("Identity", [x], out)  # identity, and dropout (evaluation mode)


def _activation(g: _Graph, layer: Any, row: LayerShape, x: str, out: str) -> str:
    return g.activation(layer, x, out)


# Layer kind -> op(graph, layer, row, input, output name, *(name, array) in declared order);
# the input of a merge kind is the tuple of its inputs; each returns the name of its output
# (the layer's tensor name).
OPS: dict[str, Callable[..., str]] = {
    "conv2d": _conv2d, "maxpool": _maxpool, "avgpool": _avgpool, "flatten": _flatten,
    "dense": _dense, "batchnorm": _batchnorm, "dropout": _identity,
    "depthwise_conv2d": _depthwise_conv2d, "global_avgpool": _global_avgpool,
    "identity": _identity, "add": _add, "concat": _concat,
    **dict.fromkeys(ACTIVATIONS, _activation),
}


def _layer(g: _Graph, layer: Any, row: LayerShape, xs: tuple[str, ...]) -> str:
    """Append one layer's nodes; returns the name of its output (the layer's name)."""
    from . import ExportError

    op = OPS.get(layer.kind)
    if op is None:
        raise ExportError(f"layer {row.name!r}: kind {layer.kind!r} has no ONNX export")
    weights = [(name, g.weights[name]) for name in row.weights]
    x = xs[0] if len(xs) == 1 else xs  # a merge kind takes them all
    return op(g, layer, row, x, tensor_name(row.name), *weights)


def build(spec: Spec, weights: Mapping[str, np.ndarray]) -> Any:
    """The checked ``onnx.ModelProto`` of ``spec`` with canonical ``weights``."""
    import onnx
    from onnx import TensorProto, helper

    from . import ExportError

    table = spec.table
    g = _Graph(weights)
    tensors = {IMAGE_INPUT: g.op("Transpose", [INPUT], "input/nchw", perm=[0, 3, 1, 2])}
    for layer, row in zip(spec.layers, table.rows, strict=True):
        tensors[row.name] = _layer(g, layer, row, tuple(tensors[s] for s in row.inputs))
    g.op("Identity", [tensors[table.rows[-1].name]], OUTPUT)
    h, w, c = table.input
    graph = helper.make_graph(
        g.nodes, spec.name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", h, w, c])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", spec.classes])],
        g.initializers)
    graph.doc_string = (f"convspec spec {spec.name!r}: NHWC float32 images in, logits "
                        f"(N, {spec.classes}) out, evaluation mode")
    model = helper.make_model(graph, producer_name="convspec", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.doc_string = spec.description or graph.doc_string
    helper.set_model_props(model, {
        "convspec.spec_name": spec.name,
        "convspec.architecture_hash": spec.architecture_hash(),
        "convspec.version": __version__,
        "convspec.input_layout": "NHWC",
        "convspec.classes": str(spec.classes),
    })
    if model.ByteSize() >= MAX_BYTES:
        raise ExportError(f"spec {spec.name!r} is too large for a single ONNX file "
                          f"({model.ByteSize():,} bytes; protobuf's limit is 2 GiB)")
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the ONNX graph of spec {spec.name!r} is invalid: {exc}") from None
    _check_shapes(inferred, table)
    return model


def _check_shapes(model: Any, table: Any) -> None:
    """Every layer's inferred ONNX shape must be the table's (NCHW <-> NHWC)."""
    from . import ExportError

    found = {}
    for info in [*model.graph.value_info, *model.graph.output]:
        found[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                 for d in info.type.tensor_type.shape.dim)
    for row in table.rows:
        want = row.output if len(row.output) == 1 else (row.output[2], *row.output[:2])
        got = found.get(tensor_name(row.name))
        if got is None or got[1:] != tuple(want):
            raise ExportError(f"{row.name}: the ONNX graph computes shape "
                              f"{None if got is None else got[1:]}, the shape table says "
                              f"{want} (NCHW)")


def write(spec: Spec, weights: Mapping[str, np.ndarray], path: Path,
          extra: Mapping[str, str] | None = None) -> None:
    """Save the model; ``extra`` metadata (class names, preprocessing) is added to its
    metadata as ``convspec.<key>``."""
    import onnx

    model = build(spec, weights)
    for key, value in (extra or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"convspec.{key}", value
    onnx.save_model(model, str(path))


def run(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: images})[0]


def run_layers(spec: Spec, weights: Mapping[str, np.ndarray],
               images: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output (NHWC or (N, units), float32) for NHWC ``images``: the graph of
    ``build`` with each layer's tensor as an extra output, run by ONNX Runtime (what
    ``convspec check`` compares with the NumPy reference, layer by layer)."""
    import onnx
    import onnxruntime as ort

    model = build(spec, weights)
    names = [tensor_name(row.name) for row in spec.table.rows]
    inferred = {info.name: info
                for info in onnx.shape_inference.infer_shapes(model).graph.value_info}
    model.graph.output.extend(inferred[name] for name in names[:-1])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    outputs = session.run([*names[:-1], OUTPUT], {INPUT: np.ascontiguousarray(images, np.float32)})
    return {row.name: out.transpose(0, 2, 3, 1) if out.ndim == 4 else out
            for row, out in zip(spec.table.rows, outputs, strict=True)}
