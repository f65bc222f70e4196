"""The ``convspec`` command line: a thin layer over the library, one module per command.

Command modules are imported only when their command runs, so ``convspec shapes`` never
pays for (or needs) a deep-learning framework.
"""

from __future__ import annotations

import importlib
import sys

import click

COMMANDS = {
    "shapes": "Print the per-layer shape, parameter and MAC table of a spec.",
    "validate": "Validate one or more specs and report every problem with its location.",
    "schema": "Print the JSON Schema of the spec language (for editor completion).",
    "check": "Compile a spec with every installed backend and compare numbers layer by layer.",
    "train": "Train a spec's network and write a run directory.",
    "evaluate": "Evaluate trained weights on the test set.",
    "predict": "Classify image files with trained weights.",
    "export": "Export a trained network as ONNX, TorchScript or a SavedModel (verified).",
    "plot": "Write a run's figures (errors, confusion, filters, activations, curves) as PNGs.",
    "report": "Write a self-contained HTML report of a run.",
    "backends": "List the registered backends and whether their framework is installed.",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"convspec.cli.{name}_cmd")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(sorted(COMMANDS.items()))


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convspec")
def cli() -> None:
    """convspec: declarative CNN specs compiled to PyTorch or TensorFlow with the same numbers."""


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    if argv is None:  # run as the program, so the process is ours (see _util.loading)
        from . import _util, tf_startup

        _util.OWN_PROCESS = True
        tf_startup.install()  # TensorFlow's start-up lines, unless TF_CPP_MIN_LOG_LEVEL asks
    try:
        cli.main(args=argv, prog_name="convspec", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:  # from click --help/--version or an explicit ctx.exit
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
