"""``convspec shapes SPEC``."""

from __future__ import annotations

import sys

import click

from ._util import loading, reporting


@click.command("shapes")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def command(spec_path: str, as_json: bool) -> None:
    """Print output shape, parameters and MACs per layer (FLOPs = 2 x MACs), and the inputs
    of each layer of a graph; then total, trainable and non-trainable parameters, and the
    memory training needs at least (weights, gradients, optimizer state, activations).

    Block instances are shown expanded. Runs without PyTorch or TensorFlow. On a spec whose
    shapes do not work out it prints the rows up to the failing layer, then the located error.
    """
    with loading():
        from ..errors import SpecError
        from ..shapes import ShapeTable
        from ..specification.load import parse_spec_text, read_spec_text, shapes, validate_spec
        from ..summary import format_table, format_totals

    with reporting():
        data, locator = parse_spec_text(read_spec_text(spec_path), spec_path)
        spec = validate_spec(data, source=spec_path, locator=locator, with_shapes=False)
        try:
            table = shapes(spec, source=spec_path, locator=locator)
        except SpecError as exc:
            rows = getattr(exc, "partial_rows", None)
            if rows and not as_json:
                click.echo(format_table(ShapeTable(input=_input(spec), rows=rows), totals=False))
            raise
        from ..memory import estimate_memory, format_bytes

        memory = estimate_memory(spec)
        if as_json:
            import json

            click.echo(json.dumps({"name": spec.name, **table.to_dict(),
                                   "training_memory": memory.to_dict()}, indent=2))
            return
        click.echo(f"{spec.name}: input {'x'.join(map(str, table.input))}, "
                   f"{spec.classes} classes")
        click.echo(format_table(table))
        click.echo(format_totals(table))
        click.echo(f"training needs at least {format_bytes(memory.total())} of memory "
                   f"(batch {spec.train.batch_size:,}, {spec.train.optimizer.kind}; without "
                   f"the data): {memory.biggest()}")
    sys.stdout.flush()


def _input(spec) -> tuple[int, int, int]:
    return (spec.input.height, spec.input.width, spec.input.channels)
