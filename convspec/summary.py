"""The shape table as text: what ``convspec shapes`` prints and the HTML report shows.

One row per layer (name, kind, output shape, parameters, MACs), plus an ``inputs`` column when
the network is a graph rather than a plain stack (Keras' "Connected to"); then the totals the
way Keras' ``model.summary()`` and torchinfo give them: total, trainable and non-trainable
parameters (batch-norm moving statistics are held but not trained; torchvision and torchinfo
count only the trainable ones, Keras counts both), with their float32 size.
"""

from __future__ import annotations

from .shapes import ShapeTable, format_shape


def format_table(table: ShapeTable, *, totals: bool = True) -> str:
    """A plain-text table: name, kind, output shape, params, MACs (and inputs for a graph)."""
    graph = not table.is_stack
    head = ("layer", "kind", "output", "params", "MACs", *(("inputs",) if graph else ()))
    body = [("input", "", format_shape(table.input), "", "", *(("",) if graph else ()))]
    body += [(r.name, r.kind, format_shape(r.output), f"{r.params:,}", f"{r.macs:,}",
              *((", ".join(r.inputs),) if graph else ())) for r in table.rows]
    if totals:
        body.append(("total", "", "", f"{table.params:,}", f"{table.macs:,}",
                     *(("",) if graph else ())))
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
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


def memory_size(scalars: int, bytes_per_scalar: int = 4) -> str:
    """``1.23 MB``: the size of ``scalars`` float32 values in binary units (as Keras'
    summary writes them: B, KB, MB, GB, each 1024 times the last)."""
    size, scale = scalars * bytes_per_scalar, 1
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 * scale:
            return f"{hundredths(size, scale)} {unit}"
        scale *= 1024
    return f"{hundredths(size, scale)} TB"


def flops_text(flops: int) -> str:
    """``6.73 MFLOPs`` below a billion, else ``3.63 GFLOPs``."""
    if flops < 10**9:
        return f"{hundredths(flops, 10**6)} MFLOPs"
    return f"{hundredths(flops, 10**9)} GFLOPs"


def hundredths(count: int, unit: int) -> str:
    """``count / unit`` to two decimals (half up), in integers: exact for any count, where a
    float division overflows beyond 1.8e308 (every size is bounded, but a product of many is
    not)."""
    value, rest = divmod(count * 100, unit)
    value += 2 * rest >= unit
    return f"{value // 100}.{value % 100:02d}"


def format_totals(table: ShapeTable) -> str:
    """Total / Trainable / Non-trainable params (Keras' wording), then parameters, MACs and
    forward FLOPs per image on one line."""
    return "\n".join([
        f"Total params: {table.params:,} ({memory_size(table.params)})",
        f"Trainable params: {table.trainable_params:,} "
        f"({memory_size(table.trainable_params)})",
        f"Non-trainable params: {table.non_trainable_params:,} "
        f"({memory_size(table.non_trainable_params)})",
        f"{table.params:,} parameters, {table.macs:,} MACs = {flops_text(table.flops)} per "
        f"image (forward)",
    ])
