"""``convspec export RUN_DIR --format onnx|torchscript|savedmodel``."""

from __future__ import annotations

import json

import click

from ._types import FiniteFloat
from ._util import reporting

FORMATS = ("onnx", "torchscript", "savedmodel")  # convspec.export.FORMATS, without importing it


@click.command("export")
@click.argument("run_dir", type=click.Path(exists=True))
@click.option("--format", "-f", "fmt", required=True, type=click.Choice(FORMATS),
              help="onnx (any backend's runs; needs convspec[export]), torchscript (PyTorch) "
              "or savedmodel (TensorFlow).")
@click.option("--out", "-o", type=click.Path(),
              help="Where to write (default: RUN_DIR/model.onnx, RUN_DIR/model.torchscript.pt "
              "or RUN_DIR/savedmodel/).")
@click.option("--weights", "-w", type=click.Path(exists=True),
              help="A weights file or run directory to export instead of RUN_DIR's weights.")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, exists=True),
              help="The spec (default: RUN_DIR/spec.yaml); for weights outside a run directory.")
@click.option("--force", is_flag=True, help="Replace an existing export at --out.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Load the export back and compare its logits with the NumPy reference.")
@click.option("--tolerance", type=FiniteFloat(min=0), default=1e-5, show_default=True,
              help="Largest max abs difference from the NumPy reference accepted, per unit "
              "of the largest logit when that exceeds 1.")
def command(run_dir: str, fmt: str, out: str | None, weights: str | None,
            spec_path: str | None, force: bool, verify: bool, tolerance: float) -> None:
    """Export a trained network as ONNX, TorchScript or a TensorFlow SavedModel.

    RUN_DIR is a run directory written by `convspec train` (or a weights file inside one).
    The export takes NHWC float32 images (any batch size), preprocessed as the run's were
    (pixel / 255, then the recorded mean / std if any), and returns the logits in evaluation
    mode; the class names and the preprocessing are in its metadata. It is written under a
    temporary name, loaded back with its own runtime
    and compared with the NumPy reference on pseudo-random images; only an export within
    --tolerance is moved to --out. An existing --out is never replaced without --force.
    """
    from pathlib import Path

    from ..errors import UsageError
    from ..export import data_metadata, default_path, export_model, get_format
    from ..run_data import class_names, input_preprocessing, run_of
    from ..run_directory import SPEC_FILE, RunDirectory, resolve_weights
    from ..specification import load_spec

    with reporting():
        source = Path(run_dir)
        folder = source if source.is_dir() else source.parent
        if spec_path:
            spec = load_spec(spec_path)
        elif RunDirectory(folder).has_spec():
            spec = RunDirectory(folder).load_spec()
        else:
            raise UsageError(f"{folder} has no {SPEC_FILE}; RUN_DIR must be a run directory "
                             f"written by `convspec train` (or pass --spec SPEC)")
        params = resolve_weights(weights or source, spec)
        target = Path(out) if out else default_path(folder, fmt)
        title = get_format(fmt).title
        run = run_of(folder)
        meta = data_metadata(class_names(spec, run), input_preprocessing(spec, run))
        click.echo(f"exporting {spec.name} to {title}: {target}")
        click.echo(f"input: NHWC float32, {json.loads(meta['preprocessing'])['input']}")
        result = export_model(spec, params, fmt, target, force=force, verify=verify,
                              tolerance=tolerance, log=click.echo, metadata=meta)
        click.echo(f"wrote {result.path}" + ("" if verify else " (not verified: --no-verify)"))

