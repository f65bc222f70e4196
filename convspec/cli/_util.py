"""Shared CLI helpers: one place that turns convspec errors into a message and an exit code."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from ..errors import ConvspecError

Command = TypeVar("Command", bound=Callable[..., Any])


def _request_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    if value is not None:
        from ..threads import request_threads

        request_threads(value)


def threads_option(command: Command) -> Command:
    """``--threads N``: fix the framework's intra-op threads (``convspec.threads``)."""
    return click.option(
        "--threads", type=click.IntRange(min=1), default=None, expose_value=False,
        callback=_request_threads,
        help="Intra-op CPU threads (per process). Default: OMP_NUM_THREADS if set, else the "
        "cores free to this process (CPU affinity, cgroup quota, less the cores other "
        "processes keep busy).")(command)


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


# True when convspec runs as the program (the console script, ``python -m convspec``): main()
# sets it when it reads its arguments from sys.argv. See ``loading``.
OWN_PROCESS = False


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Import a command's modules with the cyclic garbage collector paused, then freeze them.

    Importing pydantic and PyYAML and building the spec models creates tens of thousands of
    objects that live until exit. Left alone, the collector walks them again and again while
    they are created (some 60 collections) and once more at exit: about a sixth of a cold
    ``convspec shapes``. Frozen (``gc.freeze``), they are left out of every later collection;
    garbage made afterwards is collected as usual. Only in convspec's own process: in a
    caller's (tests, notebooks), a freeze would also keep the caller's objects from ever being
    collected.
    """
    if not OWN_PROCESS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
