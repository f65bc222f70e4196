"""``convspec predict SPEC --weights W image.png ...``."""

from __future__ import annotations

import click

from ._util import reporting, threads_option


@click.command("predict")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--weights", "-w", required=True, type=click.Path(exists=True),
              help="A run directory or a weights file.")
@click.option("--backend", "-b", default="torch", show_default=True)
@click.option("--invert", is_flag=True,
              help="Invert grey levels (for dark digits on a light background).")
@threads_option
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many classes to list per image.")
def command(spec_path: str, images: tuple[str, ...], weights: str, backend: str, invert: bool,
            top: int) -> None:
    """Classify image files (PNG, JPEG ...) and print class probabilities.

    Images are converted to the spec's channels and resized to its input size (with a
    warning); MNIST-style data is a light digit on a dark background.
    """
    import numpy as np

    from ..backends import get_backend
    from ..data import CLASS_NAMES
    from ..images import load_images
    from ..runs import resolve_weights
    from ..specification import load_spec

    with reporting():
        spec = load_spec(spec_path)
        batch = load_images(images, spec, invert=invert, warn=lambda m: click.echo(m, err=True))
        model = get_backend(backend).compile(spec, weights=resolve_weights(weights, spec))
        logits = model.predict(batch).astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        names = CLASS_NAMES.get(spec.train.dataset)

        def label(c: int) -> str:
            return f"{c} ({names[c]})" if names and c < len(names) else str(c)

        for path, p in zip(images, probs):
            order = [int(c) for c in np.argsort(-p)[:top]]
            ranked = ", ".join(f"{label(c)}: {p[c]:.1%}" for c in order)
            click.echo(f"{path}: {label(order[0])}  [{ranked}]")
