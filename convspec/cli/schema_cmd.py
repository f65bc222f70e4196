"""``convspec schema``."""

from __future__ import annotations

import click

from ._util import loading, reporting


@click.command("schema")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to a file instead.")
def command(out: str | None) -> None:
    """Print the JSON Schema of the spec language.

    For completion and checking in editors with the YAML language server, save it and put
    ``# yaml-language-server: $schema=path/to/schema.json`` on the first line of a spec.
    """
    with loading():
        from ..specification.schema import schema_json

    text = schema_json()
    if out:
        from pathlib import Path

        from ..atomic_files import atomic_write_text

        with reporting():  # a read-only or full folder: one line naming the file
            atomic_write_text(Path(out), text + "\n")
        click.echo(f"wrote {out}")
    else:
        click.echo(text)
