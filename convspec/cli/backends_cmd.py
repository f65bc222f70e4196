"""``convspec backends``."""

from __future__ import annotations

import click


@click.command("backends")
def command() -> None:
    """List registered backends and whether their framework is installed (nothing imported)."""
    from ..backends import get_backend, list_backends
    from ..errors import BackendError

    for name in list_backends():
        try:
            backend = get_backend(name)
        except BackendError as exc:
            click.echo(f"{name:<12} not available: {exc}")
        else:
            click.echo(f"{name:<12} available ({backend.framework})")
