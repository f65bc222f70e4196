"""``convspec report RUN_DIR``."""

from __future__ import annotations

import click

from ._types import BACKEND, COUNT
from ._util import reference_check_option, reporting


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--image", "images", type=COUNT, multiple=True,
              help="Test image whose layer outputs are shown (repeatable; default: the "
                   "tutorial's 0 and 13).")
@click.option("--backend", "-b", type=BACKEND, default=None,
              help="Backend to run (default: the run's).")
@click.option("--data", "data", type=click.Path(),
              help="Use this data instead of the run's: a folder, a folder of IDX files, a "
              ".csv or a .npz.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Folder with a built-in dataset's IDX files (default: the run's).")
@reference_check_option
def command(run_dir: str, images: tuple[int, ...], backend: str | None, data: str | None,
            data_dir: str | None, reference_check: bool) -> None:
    """Write RUN_DIR/report.html: one self-contained page with the spec, shapes, curves,
    metrics, test images, confusion matrix, example errors, filters and layer outputs."""
    from ..report import open_run, write_report

    with reporting():
        run = open_run(run_dir, backend=backend, data_dir=data_dir, data=data, log=click.echo,
                       reference_check=reference_check)
        click.echo(f"wrote {write_report(run, images=images or None)}")
