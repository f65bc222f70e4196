"""``convspec export RUN_DIR --format onnx|torchscript|savedmodel``."""

from __future__ import annotations

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
    The export takes NHWC float32 images (any batch size) and returns the logits in
    evaluation mode. It is written under a temporary name, loaded back with its own runtime
    and compared with the NumPy reference on pseudo-random images; only an export within
    --tolerance is moved to --out. An existing --out is never replaced without --force.
    """
    from pathlib import Path

    from ..errors import UsageError
    from ..export import default_path, export_model, get_format
    from ..runs import SPEC_FILE, load_run_spec, resolve_weights
    from ..specification import load_spec

    with reporting():
        source = Path(run_dir)
        folder = source if source.is_dir() else source.parent
        if spec_path:
            spec = load_spec(spec_path)
        elif (folder / SPEC_FILE).is_file():
            spec = load_run_spec(folder)
        else:
            raise UsageError(f"{folder} has no {SPEC_FILE}; RUN_DIR must be a run directory "
                             f"written by `convspec train` (or pass --spec SPEC)")
        params = resolve_weights(weights or source, spec)
        target = Path(out) if out else default_path(folder, fmt)
        title = get_format(fmt).title
        click.echo(f"exporting {spec.name} to {title}: {target}")
        result = export_model(spec, params, fmt, target, force=force, verify=verify,
                              tolerance=tolerance, log=click.echo)
        click.echo(f"wrote {result.path}" + ("" if verify else " (not verified: --no-verify)"))
