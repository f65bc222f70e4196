"""``convspec plot RUN_DIR --what ...``."""

from __future__ import annotations

import click

from ._util import reference_check_option, reporting

WHAT = ("errors", "confusion", "filters", "activations", "curves", "all")


@click.command("plot")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--what", "-w", "what", multiple=True, type=click.Choice(WHAT), default=("all",),
              show_default=True, help="Which figures (repeatable).")
@click.option("--image", type=click.IntRange(min=0), default=0, show_default=True,
              help="Test image whose conv activations are shown.")
@click.option("--layer", "layers", multiple=True,
              help="Conv layer for filters/activations (repeatable; default: all conv layers).")
@click.option("--backend", "-b", default=None,
              help="Backend for activations and predictions (default: the run's).")
@click.option("--data", "data", type=click.Path(),
              help="Use this data instead of the run's: a folder, a folder of IDX files, a "
              ".csv or a .npz.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Folder with a built-in dataset's IDX files (default: the run's).")
@reference_check_option
def command(run_dir: str, what: tuple[str, ...], image: int, layers: tuple[str, ...],
            backend: str | None, data: str | None, data_dir: str | None,
            reference_check: bool) -> None:
    """Write a run's figures as PNG files into the run directory.

    errors: the first misclassified test images; confusion: confusion matrix; filters: conv
    kernels; activations: conv outputs for one test image; curves: loss and accuracy.
    """
    from ..report import open_run
    from ..viz.run_figures import KINDS

    with reporting():
        run = open_run(run_dir, backend=backend, data_dir=data_dir, data=data, log=click.echo,
                       reference_check=reference_check)
        kinds = KINDS if "all" in what else tuple(dict.fromkeys(what))
        for path in run.plots(kinds, image=image, layers=list(layers) or None):
            click.echo(f"wrote {path}")
