"""The network as a picture: its graph drawn by Graphviz, one box per layer.

``graph_dot`` writes the graph in Graphviz's DOT language (plain text, no dependency): the
image and one node per layer (name, kind, output shape, parameters), one edge per input, the
layers of each block instance in a labelled frame. ``render_graph`` draws it with Graphviz's
``dot`` program through the ``graphviz`` package (``pip install "convspec[graph]"`` plus the
Graphviz program itself: ``apt-get install graphviz``, ``brew install graphviz``), as SVG, PNG
or PDF. Where either is missing it writes the DOT text instead (any Graphviz viewer renders
it) and raises ``GraphvizMissing`` saying, in one line, what to install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConvspecError
from ..shapes import format_shape

FORMATS = ("svg", "png", "pdf", "dot")
# layer kind -> fill colour, by family (convolutions, pooling, normalization, merges ...)
COLORS = {
    "conv2d": "#cfe2f3", "depthwise_conv2d": "#cfe2f3", "dense": "#d9d2e9",
    "maxpool": "#d9ead3", "avgpool": "#d9ead3", "global_avgpool": "#d9ead3",
    "batchnorm": "#fff2cc", "dropout": "#f3f3f3", "flatten": "#f3f3f3", "identity": "#f3f3f3",
    "add": "#fce5cd", "concat": "#fce5cd",
}
ACTIVATION_COLOR = "#eeeeee"
INSTALL = ("apt-get install graphviz, brew install graphviz or conda install graphviz; then "
           'pip install "convspec[graph]"')


class GraphvizMissing(ConvspecError):
    """Graphviz (the dot program or its Python package) is not installed."""


def _label(*lines: str) -> str:
    return "\\n".join(line.replace('"', '\\"') for line in lines if line)


def _kind(layer: Any) -> str:
    """``conv2d 3x3 /2``: the kind with its window and stride, where it has them."""
    window = getattr(layer, "kernel", None) or getattr(layer, "size", None)
    stride = getattr(layer, "strides", None) or getattr(layer, "stride", None)
    text = layer.kind + (f" {format_shape(window)}" if window else "")
    text += f" /{format_shape(stride) if stride[0] != stride[1] else stride[0]}" \
        if stride and tuple(stride) != (1, 1) else ""
    act = getattr(layer, "activation", None)
    return text + (f" + {act}" if act else "")


def _node(layer: Any, row: Any) -> str:
    params = f"{row.params:,} params" if row.params else ""
    color = COLORS.get(row.kind, ACTIVATION_COLOR)
    label = _label(row.name, _kind(layer), format_shape(row.output), params)
    return f'"{row.name}" [label="{label}", fillcolor="{color}"];'


def graph_dot(spec: Any) -> str:
    """The spec's network in Graphviz's DOT language, top to bottom."""
    table = spec.table
    lines = [f'digraph "{spec.name}" {{',
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.3, '
             f'ranksep=0.3, label="{spec.name}: {table.trainable_params:,} trainable + '
             f'{table.non_trainable_params:,} non-trainable parameters", labelloc=t];',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
             'margin="0.12,0.04"];',
             '  edge [arrowsize=0.6];',
             f'  "input" [label="{_label("input", format_shape(table.input))}", '
             'shape=oval, fillcolor="#ffffff"];']
    instance = None
    for layer, row, origin in zip(spec.layers, table.rows, spec.origins, strict=True):
        if origin.instance != instance:
            if instance is not None:
                lines.append("  }")
            instance = origin.instance
            if instance is not None:
                lines.append(f'  subgraph "cluster_{instance}" {{ label="{instance} '
                             f'({origin.loc[1]})"; style="rounded,dashed"; color="#999999";')
        lines.append(f"  {_node(layer, row)}")
    if instance is not None:
        lines.append("  }")
    lines += [f'  "{source}" -> "{row.name}";' for row in table.rows for source in row.inputs]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def render_graph(spec: Any, path: str | os.PathLike[str]) -> Path:
    """Draw the spec's graph into ``path``, its format from the suffix (.svg, .png, .pdf, or
    .dot for the DOT text alone). Without Graphviz, writes ``path`` with the suffix .dot and
    raises GraphvizMissing naming what to install and where the DOT text is."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ConvspecError(f"{path}: a graph picture is .svg, .png, .pdf or .dot, not "
                            f"{path.suffix or 'a file without a suffix'}")
    dot = graph_dot(spec)
    if fmt == "dot":
        _write(path, dot.encode())
        return path
    try:
        import graphviz

        data = graphviz.Source(dot).pipe(format=fmt)
    except ImportError:
        missing = "the graphviz Python package is not installed"
    except Exception as exc:  # graphviz.ExecutableNotFound, or dot failing on this system
        name = type(exc).__name__
        missing = "Graphviz's dot program is not installed" if name == "ExecutableNotFound" \
            else f"Graphviz's dot failed ({' '.join(str(exc).split())[:200]})"
    else:
        _write(path, data)
        return path
    text = path.with_suffix(".dot")
    _write(text, dot.encode())
    raise GraphvizMissing(f"cannot draw {path.name}: {missing} ({INSTALL}); the graph is in "
                          f"{text} as DOT text meanwhile")
