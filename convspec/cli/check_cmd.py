"""``convspec check SPEC``."""

from __future__ import annotations

import sys

import click

from ._types import BACKEND, SEED, SIZE, FiniteFloat
from ._util import reporting


@click.command("check")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--backend", "-b", "backends", type=BACKEND, multiple=True,
              help="Backend to check, or 'onnx' for the ONNX export (repeatable; default: "
                   "every installed backend that can build the spec, and onnx).")
@click.option("--batch", type=SIZE, default=8, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--tolerance", type=FiniteFloat(min=0), default=1e-5, show_default=True)
def command(spec_path: str, backends: tuple[str, ...], batch: int, seed: int,
            tolerance: float) -> None:
    """Run one random batch through every backend (and the ONNX export) and the NumPy
    reference, layer by layer: every node of a graph.

    Prints the max abs difference per layer; exits 1 on any difference above the tolerance
    (per unit of the layer's largest value, when that exceeds 1) or any shape that differs
    from the shape table. A backend that cannot build the spec yet
    is listed as skipped, with the reason.
    """
    from ..backends import canonical_name
    from ..reference_comparison import compare_with_reference
    from ..specification import load_spec

    with reporting():
        spec = load_spec(spec_path)
        names = [canonical_name(b) for b in backends] or None
        report = compare_with_reference(spec, names, batch=batch, seed=seed, tolerance=tolerance)
        click.echo(report.format())
        if not report.ok:
            sys.exit(1)
