"""``convspec validate SPEC...``."""

from __future__ import annotations

import sys

import click

from ._util import loading


@click.command("validate")
@click.argument("spec_paths", metavar="SPEC...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
def command(spec_paths: tuple[str, ...]) -> None:
    """Validate specs (types, ranges, names, shapes); report every problem at once.

    Exits 0 when all are valid, 1 otherwise.
    """
    with loading():
        from ..errors import SpecError
        from ..specification import load_spec

    failed = 0
    for path in spec_paths:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            failed += 1
            click.echo(str(exc), err=True)
        else:
            click.echo(f"{path}: ok ({spec.name}, {len(spec.layers)} layers)")
    if failed:
        click.echo(f"{failed} of {len(spec_paths)} spec(s) invalid", err=True)
        sys.exit(1)
