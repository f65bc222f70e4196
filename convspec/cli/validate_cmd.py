"""``convspec validate SPEC... [--data PATH]``."""

from __future__ import annotations

import sys

import click

from ._util import loading, reporting


@click.command("validate")
@click.argument("spec_paths", metavar="SPEC...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("--data", "data", type=click.Path(),
              help="Check the specs against this data instead of their train.dataset: a folder "
              "of class folders, a folder of IDX files, a .csv or a .npz.")
def command(spec_paths: tuple[str, ...], data: str | None) -> None:
    """Validate specs (types, ranges, names, shapes); report every problem at once.

    A spec that names its data (train.dataset), or every spec with --data, is also checked
    against that data (image height, width and channels, number of classes) without reading
    it all: nothing is trained or written. Exits 0 when all are valid, 1 otherwise.
    """
    with loading():
        from ..errors import ConvspecError, SpecError
        from ..specification import load_spec

    if data is not None:
        from pathlib import Path

        from ..data.resolve import source_kind

        with reporting():
            source_kind(Path(data))  # a path that is no data at all is a bad argument
    failed = 0
    for path in spec_paths:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            failed += 1
            click.echo(str(exc), err=True)
            continue
        try:
            lines = _check_data(spec, path, data)
        except ConvspecError as exc:
            failed += 1
            click.echo(f"{path}: the spec is valid, but its data does not fit: {exc}", err=True)
            continue
        click.echo(f"{path}: ok ({spec.name}, {len(spec.layers)} layers)")
        for line in lines:
            click.echo(line)
    if failed:
        click.echo(f"{failed} of {len(spec_paths)} spec(s) invalid", err=True)
        sys.exit(1)


def _check_data(spec, path: str, data: str | None) -> list[str]:
    """Lines to print about the data check; raises ``DataError`` when the data does not fit.
    Skipped for a spec that leaves train.dataset at its default, unless --data is given."""
    from pathlib import Path

    if data is None and "dataset" not in spec.train.model_fields_set:
        return []
    from ..data.fit import check_fits
    from ..data.probe import probe
    from ..data.resolve import with_data

    spec = with_data(spec, spec_dir=Path(path).parent, data=data)
    summary = probe(spec.train.dataset)
    notes = check_fits(spec, summary)
    lines = [f"  note: {note}" for note in notes]
    if summary.kind != "builtin":
        lines.insert(0, f"  data: {summary.describe()}: fits the spec")
    return lines
