"""``convspec evaluate RUN_DIR`` or ``convspec evaluate SPEC --weights RUN_DIR_OR_FILE``."""

from __future__ import annotations

import json

import click

from ..data.catalog import DATASET_NAMES
from ._types import BACKEND
from ._util import reference_check_option, reporting, threads_option


@click.command("evaluate")
@click.argument("target", metavar="RUN_DIR|SPEC", type=click.Path(exists=True))
@click.option("--weights", "-w", type=click.Path(exists=True),
              help="A run directory or a weights file (.safetensors) from any backend "
              "(default: RUN_DIR's own; needed with a SPEC).")
@click.option("--backend", "-b", type=BACKEND, default=None,
              help="Backend to run (default: the run's, else torch).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu",
              show_default=True)
@click.option("--data", "data", type=click.Path(),
              help="Evaluate on this data instead of the run's: a folder, a folder of IDX "
              "files, a .csv or a .npz.")
@click.option("--dataset", type=click.Choice(DATASET_NAMES),
              help="Evaluate on this built-in dataset instead of the run's.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Folder with a built-in dataset's IDX files (default: the run's).")
@click.option("--split", type=click.Choice(["test", "validation", "train"]), default="test",
              show_default=True)
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@reference_check_option
def command(target: str, weights: str | None, backend: str | None, device: str,
            data: str | None, dataset: str | None, data_dir: str | None, split: str,
            as_json: bool, reference_check: bool) -> None:
    """Evaluate trained weights: accuracy, per-class accuracy, confusion matrix, errors.

    RUN_DIR evaluates a run with its own spec, weights and data (the data source, data
    folder and preprocessing it was trained with); SPEC --weights W evaluates weights for a
    spec, on the data of the run W belongs to when it is one. --data or --dataset evaluate
    on other data. Weights trained with one backend evaluate identically with another.
    """
    from pathlib import Path

    from ..backends import compile_model, get_backend
    from ..errors import UsageError
    from ..evaluation import evaluate, require_images
    from ..run_data import describe, open_target, padded, run_data
    from ..verification import check_model

    with reporting():
        if data and dataset:
            raise UsageError("give either --data PATH or --dataset NAME, not both")
        spec, run, params = open_target(target, weights)
        told = bool(data or dataset)
        data_spec = run.load_spec() if run is not None and not told else spec
        if run is None and not told:
            from ..data.resolve import with_data

            data_spec = with_data(spec, spec_dir=Path(target).parent)
        loaded = run_data(data_spec, run, data=data, dataset=dataset, data_dir=data_dir,
                          log=lambda m: click.echo(m, err=True))
        require_images(getattr(loaded, split), split, loaded.source)
        backend = backend or (run.config.backend if run and run.config else "torch")
        model = compile_model(get_backend(backend), spec, weights=params, device=device)
        if reference_check:
            check_model(model)
        result = evaluate(model, getattr(loaded, split), spec.train.eval_batch_size)
        names = padded(loaded.class_names, spec.classes)
        if as_json:
            click.echo(json.dumps({"split": split, "backend": backend,
                                   "data": {"source": loaded.source,
                                            "class_names": list(names)},
                                   **result.to_dict()}))
            return
        click.echo(describe(loaded, split))
        text = result.report(tuple(names))
        click.echo(text.replace("Test-Set", split.capitalize() + "-Set", 1))
        wrong = result.misclassified
        click.echo(f"Misclassified ({len(wrong)}): {' '.join(map(str, wrong[:50]))}"
                   + (" ..." if len(wrong) > 50 else ""))
