"""``convspec predict RUN_DIR FILES_OR_FOLDERS...`` or ``predict SPEC FILES --weights W``."""

from __future__ import annotations

import click

from ._types import BACKEND, SIZE
from ._util import reference_check_option, reporting, threads_option


@click.command("predict")
@click.argument("target", metavar="RUN_DIR|SPEC", type=click.Path(exists=True))
@click.argument("inputs", metavar="FILES_OR_FOLDERS...", nargs=-1, required=True,
                type=click.Path())
@click.option("--weights", "-w", type=click.Path(exists=True),
              help="A run directory or a weights file (default: RUN_DIR's; needed with a SPEC).")
@click.option("--backend", "-b", type=BACKEND, default=None,
              help="Backend to run (default: the run's, else torch).")
@click.option("--resize", type=click.Choice(["nearest", "bilinear", "bicubic", "lanczos", "box",
                                             "hamming"]),
              help="Resize images of another size with this filter (default: the run's data "
              "source's; without one, another size is an error).")
@click.option("--background", default=None, callback=lambda ctx, param, value: _colour(value),
              help="Colour transparent pixels are composited over: black, white or #rrggbb "
              "(default: the run's data source's, else black).")
@click.option("--invert", is_flag=True,
              help="Invert grey levels (for dark digits on a light background).")
@threads_option
@click.option("--top", type=SIZE, default=3, show_default=True,
              help="How many classes to list per image.")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text",
              show_default=True, help="Output: a line per file, CSV or JSON.")
@click.option("--out", "-o", type=click.Path(dir_okay=False),
              help="Write the output to this file instead of the terminal.")
@reference_check_option
def command(target: str, inputs: tuple[str, ...], weights: str | None, backend: str | None,
            resize: str | None, background: str | None, invert: bool, top: int, fmt: str,
            out: str | None, reference_check: bool) -> None:
    """Classify image files (PNG, JPEG, BMP, GIF, WebP, TIFF; folders are searched) and
    print class probabilities.

    Files are read as the run's training images were: converted to the spec's channels,
    transparency composited over the background, preprocessed with the run's recorded
    scaling and normalisation. MNIST-style data is a light figure on a dark background.
    """
    from pathlib import Path

    from ..backends import compile_model, get_backend
    from ..data.decoder import DecodeOptions
    from ..prediction import expand_inputs, format_rows, predict_files, rows
    from ..run_data import class_names, input_preprocessing, open_target

    def warn(message: str) -> None:
        click.echo(message, err=True)

    with reporting():
        spec, run, params = open_target(target, weights)
        source = (run.load_spec() if run is not None else spec).train.dataset
        options = DecodeOptions.for_spec(
            spec, resize or getattr(source, "resize", None),
            background or getattr(source, "background", "black"))
        preprocessing = input_preprocessing(spec, run)
        files = expand_inputs(inputs)
        names = class_names(spec, run)
        colour = "grey" if options.channels == 1 else "RGB"
        warn(f"Reading {len(files)} image(s) as {options.height}x{options.width} {colour}, "
             f"transparency over {background or getattr(source, 'background', 'black')}, "
             f"{'resized with ' + options.resize if options.resize else 'no resizing'}; "
             f"{preprocessing.formula()}")
        backend = backend or (run.config.backend if run and run.config else "torch")
        model = compile_model(get_backend(backend), spec, weights=params)
        if reference_check:
            from ..verification import check_model

            check_model(model)
        found = predict_files(model, files, options, preprocessing, invert=invert, warn=warn)
        text = format_rows(rows(found, names, top), names, fmt)
        if out:
            from ..atomic_files import atomic_write_text

            atomic_write_text(Path(out), text)
            warn(f"wrote {out}")
        else:
            click.echo(text, nl=False)


def _colour(value: str | None) -> str | None:
    if value is not None:
        from ..data.decoder import parse_colour
        from ..errors import DataError

        try:
            parse_colour(value)
        except DataError as exc:
            raise click.BadParameter(str(exc).removeprefix("background ")) from None
    return value

