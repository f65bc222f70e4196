"""``convspec evaluate SPEC --weights RUN_DIR_OR_FILE``."""

from __future__ import annotations

import json

import click

from ._util import reporting, threads_option


@click.command("evaluate")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--weights", "-w", required=True, type=click.Path(exists=True),
              help="A run directory or a weights file (.safetensors) from any backend.")
@click.option("--backend", "-b", default="torch", show_default=True, help="Backend to run.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu",
              show_default=True)
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist"]),
              help="Override train.dataset.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with IDX files.")
@click.option("--split", type=click.Choice(["test", "validation", "train"]), default="test",
              show_default=True)
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def command(spec_path: str, weights: str, backend: str, device: str, dataset: str | None,
            data_dir: str | None, split: str, as_json: bool) -> None:
    """Evaluate trained weights: accuracy, per-class accuracy, confusion matrix, errors.

    Weights trained with one backend evaluate identically with another.
    """
    from ..backends import get_backend
    from ..data import load_dataset
    from ..evaluate import evaluate
    from ..runs import resolve_weights
    from ..session import apply_overrides
    from ..specification import load_spec

    with reporting():
        spec = apply_overrides(load_spec(spec_path), {"dataset": dataset})
        params = resolve_weights(weights, spec)
        data = load_dataset(spec.train.dataset, data_dir=data_dir,
                            validation_size=spec.train.validation_size,
                            log=lambda m: click.echo(m, err=True))
        model = get_backend(backend).compile(spec, weights=params, device=device)
        result = evaluate(model, getattr(data, split), spec.train.eval_batch_size)
        if as_json:
            click.echo(json.dumps({"split": split, "backend": backend, **result.to_dict()}))
            return
        text = result.report(data.class_names)
        click.echo(text.replace("Test-Set", split.capitalize() + "-Set", 1))
        wrong = result.misclassified
        click.echo(f"Misclassified ({len(wrong)}): {' '.join(map(str, wrong[:50]))}"
                   + (" ..." if len(wrong) > 50 else ""))
