"""The running command's arguments, to start the same command again under a launcher.

``convspec train --nproc N`` with a backend that trains one process per device (torch) hands
these to the backend's ``launch`` hook, which starts N copies under its launcher (torchrun).
"""

from __future__ import annotations

import click
from click.core import ParameterSource


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
        elif isinstance(param, click.Option) and param.multiple:
            for item in value:
                args += [param.opts[0], str(item)]
        else:
            args += [param.opts[0], str(value)]  # type: ignore[union-attr]
    return [*positional, *args]
