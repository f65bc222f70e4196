"""``convspec train --nproc N`` for the torch backend: start the same command under torchrun.

torchrun (``python -m torch.distributed.run``) is PyTorch's own launcher: it starts one
worker per process slot, gives each its RANK / WORLD_SIZE / LOCAL_RANK and a rendezvous,
and tears every worker down when one fails. convspec only builds its command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click
from click.core import ParameterSource

from ..errors import UsageError


def command_args(ctx: click.Context, drop: set[str]) -> list[str]:
    """The arguments of the running command as given on the command line, minus ``drop`` and
    options that take effect in their callback (``--threads``: the launcher passes it on)."""
    args: list[str] = []
    positional: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        if name in drop or name not in ctx.params or ctx.get_parameter_source(name) not in (
                ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        value = ctx.params[name]
        if isinstance(param, click.Argument):
            positional.append(str(value))
        elif isinstance(param, click.Option) and param.is_flag:
            if value:
                args.append(param.opts[0])
            elif param.secondary_opts:
                args.append(param.secondary_opts[0])
        else:
            args += [param.opts[0], str(value)]  # type: ignore[union-attr]
    return [*positional, *args]


def torchrun_argv(nproc: int, args: list[str]) -> list[str]:
    """``torchrun --standalone --nproc-per-node N -m convspec <args>`` for this Python."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "convspec", *args]


def launch_torchrun(nproc: int, args: list[str]) -> int:
    """Run ``convspec <args>`` on ``nproc`` processes under torchrun; its exit status.

    Each worker gets ``--threads`` threads when given, else OMP_NUM_THREADS when set, else an
    equal share of the cores free to this process (``convspec.threads``). Ctrl-C
    reaches the workers directly (they checkpoint at a step boundary), so this process only
    waits for them.
    """
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UsageError('--nproc with the torch backend needs PyTorch: pip install '
                         '"convspec[torch]"')
    from ..threads import ENV, choose_threads, requested_threads

    env = dict(os.environ)
    if requested_threads() is not None:  # --threads is per process; it reaches them so
        env[ENV] = str(requested_threads())
    env.setdefault(ENV, str(max(1, choose_threads().threads // nproc)))
    argv = torchrun_argv(nproc, args)
    click.echo(f"Starting {nproc} processes with torchrun: {' '.join(argv[1:])}", err=True)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call(argv, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
