"""Shared CLI helpers: one place that turns convspec errors into a message and an exit code."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from ..errors import ConvspecError


@contextlib.contextmanager
def reporting() -> Iterator[None]:
    """Print a ConvspecError as one clear paragraph and exit with its code, no traceback."""
    try:
        yield
    except ConvspecError as exc:
        click.echo(f"error: {exc}" if "\n" not in str(exc) else str(exc), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
