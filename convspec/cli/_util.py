"""Shared CLI helpers: one place that turns convspec errors into a message and an exit code."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from ..errors import ConvspecError, os_error_message
from ._types import SIZE


@contextlib.contextmanager
def verbose_logging(verbose: bool) -> Iterator[None]:
    """With ``--verbose``, convspec's details (``logging`` at INFO under ``convspec``: where
    data was looked for, why a fallback was used) are printed to stderr, one line each."""
    if not verbose:
        yield
        return
    logger = logging.getLogger("convspec")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

Command = TypeVar("Command", bound=Callable[..., Any])


MAX_THREADS = 4096  # a sanity bound: more would exhaust the process, not speed it up


def _request_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    if value is not None and value > MAX_THREADS:
        raise click.BadParameter(f"{value:,} threads is more than the {MAX_THREADS:,} allowed",
                                 ctx, param)
    if value is not None:
        from ..threads import request_threads

        request_threads(value)


def threads_option(command: Command) -> Command:
    """``--threads N``: fix the framework's intra-op threads (``convspec.threads``)."""
    return click.option(
        "--threads", type=SIZE, default=None, expose_value=False,
        callback=_request_threads,
        help="Intra-op CPU threads (per process). Default: OMP_NUM_THREADS if set, else the "
        "cores free to this process (CPU affinity, cgroup quota, less the cores other "
        "processes keep busy).")(command)


@contextlib.contextmanager
def reporting() -> Iterator[None]:
    """Print a ConvspecError as one clear paragraph and exit with its code, no traceback; an
    OSError (a full disk, a read-only folder, ...) or MemoryError as one line, exit 1."""
    try:
        yield
    except ConvspecError as exc:
        click.echo(f"error: {exc}" if "\n" not in str(exc) else str(exc), err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # a full disk, a read-only folder, a permission: one line
        click.echo(f"error: {os_error_message(exc)}", err=True)
        sys.exit(1)
    except MemoryError as exc:
        click.echo(f"error: out of memory ({exc or 'an allocation failed'}); use a smaller "
                   f"batch or network (convspec shapes SPEC estimates what training needs)",
                   err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


# The opt-out of ``convspec.verification.check_model`` (train, evaluate, predict, plot, report).
reference_check_option = click.option(
    "--reference-check/--no-reference-check", default=True,
    help="First check the compiled model against the NumPy reference on 4 images (every "
    "layer's output and the gradient): refuses a framework kernel that computes another "
    "function than the spec. On by default; costs milliseconds.")


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
