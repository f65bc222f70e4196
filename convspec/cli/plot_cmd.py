"""``convspec plot RUN_DIR|SPEC --what ...``."""

from __future__ import annotations

from pathlib import Path

import click

from ._types import BACKEND, COUNT
from ._util import reference_check_option, reporting

WHAT = ("images", "errors", "confusion", "filters", "input", "activations", "curves", "graph",
        "all")


@click.command("plot")
@click.argument("target", metavar="RUN_DIR|SPEC", type=click.Path(exists=True))
@click.option("--what", "-w", "what", multiple=True, type=click.Choice(WHAT), default=("all",),
              show_default=True, help="Which figures (repeatable).")
@click.option("--image", "images", type=COUNT, multiple=True,
              help="Test image for input and activations (repeatable; default: the "
                   "tutorial's 0 and 13).")
@click.option("--layer", "layers", multiple=True,
              help="Layer for filters (conv layers) and activations (any layer with "
                   "feature maps); repeatable; default: every conv layer's filters, and the "
                   "output of every conv block (after its pooling and ReLU).")
@click.option("--input-channel", "input_channels", type=COUNT, multiple=True,
              help="Input channel of the filters drawn (repeatable; default: 0, and 1 where "
                   "a layer has it, as the tutorial draws conv2).")
@click.option("--backend", "-b", type=BACKEND, default=None,
              help="Backend for activations and predictions (default: the run's).")
@click.option("--data", "data", type=click.Path(),
              help="Use this data instead of the run's: a folder, a folder of IDX files, a "
              ".csv or a .npz.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Folder with a built-in dataset's IDX files (default: the run's).")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Where the graph goes (.svg, .png, .pdf or .dot); default: RUN_DIR/graph.svg, "
                   "or NAME-graph.svg here for a SPEC.")
@reference_check_option
def command(target: str, what: tuple[str, ...], images: tuple[int, ...],
            layers: tuple[str, ...], input_channels: tuple[int, ...], backend: str | None,
            data: str | None, data_dir: str | None, out: str | None,
            reference_check: bool) -> None:
    """Write a run's figures into the run directory, or draw a spec's graph.

    The tutorial's figures: images: the first 9 test images with their true (and predicted)
    classes; errors: the first misclassified test images; confusion: confusion matrix;
    filters: conv kernels, one input channel per figure, white at zero; input: one test
    image; activations: a layer's output channels for a test image, the image beside; and
    curves: loss and accuracy (needs only the metrics: no weights, data or framework); graph:
    the network, drawn by Graphviz (the only figure a SPEC file has; without Graphviz, its
    DOT text is written instead and --what graph fails, --what all notes it).
    """
    from ..errors import UsageError
    from ..viz.run_figures import KINDS

    with reporting():
        wanted = (*KINDS, "graph") if "all" in what else tuple(dict.fromkeys(what))
        if Path(target).is_file():
            if "all" not in what and set(wanted) != {"graph"}:
                others = ", ".join(k for k in wanted if k != "graph")
                raise UsageError(f"--what {others} needs a run directory; a spec file has "
                                 f"only its graph (--what graph)")
            from ..specification import load_spec

            spec = load_spec(target)
            _graph(spec, out or f"{spec.name}-graph.svg")
            return
        kinds = tuple(k for k in wanted if k != "graph")
        if kinds:
            from ..report import open_run

            run = open_run(target, backend=backend, data_dir=data_dir, data=data,
                           log=click.echo, reference_check=reference_check)
            for figure in run.plots(kinds, images=images or None, layers=layers or None,
                                    input_channels=input_channels or None):
                click.echo(f"wrote {figure.path}")
        if "graph" in wanted:
            from ..run_directory import RunDirectory

            spec = RunDirectory.open(target).load_spec()
            _graph(spec, out or Path(target) / "graph.svg", required="all" not in what)


def _graph(spec: object, path: str | Path, required: bool = True) -> None:
    """Draw the graph; without Graphviz an error, or (for --what all) a one-line note."""
    from ..viz.graph import GraphvizMissing, render_graph

    try:
        click.echo(f"wrote {render_graph(spec, path)}")
    except GraphvizMissing as exc:
        if required:
            raise
        click.echo(f"note: {exc}", err=True)
