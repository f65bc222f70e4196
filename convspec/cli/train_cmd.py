"""``convspec train SPEC``."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..data.catalog import DATASET_NAMES
from ._types import BACKEND, COUNT, SEED, SIZE, FiniteFloat
from ._util import reference_check_option, reporting, threads_option, verbose_logging


def _settings(values: tuple[str, ...]) -> dict[str, Any] | None:
    """``--set KEY=VALUE`` (repeatable; a later one for the same key wins) -> {key: value};
    ``UsageError`` (exit 2) for a malformed one."""
    from ..errors import UsageError
    from ..specification.overrides import parse_assignment

    settings: dict[str, Any] = {}
    for text in values:
        try:
            key, value = parse_assignment(text)
        except ValueError as exc:
            raise UsageError(f"--set {text}: {exc}") from None
        settings[key] = value
    return settings or None


class _Interval(click.ParamType):
    """A positive number of iterations, or ``epoch``."""

    name = "N|epoch"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "epoch":
            return value
        try:
            return SIZE.convert(value, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is neither a number of iterations from 1 to "
                      f"{SIZE.max:,} nor 'epoch'", param, ctx)


@click.command("train")
@click.argument("spec_path", metavar="SPEC", required=False, type=click.Path(dir_okay=False))
@click.option("--backend", "-b", type=BACKEND, default=None,
              help="Backend: torch (default) or tensorflow (tf), or any registered plugin; "
              "with --resume, the run's own backend unless given.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu",
              show_default=True, help="Where to train.")
@click.option("--set", "settings", metavar="KEY=VALUE", multiple=True,
              help="Change any spec setting, validated like the file (repeatable): "
              "--set train.optimizer.learning_rate=3e-4 --set layers[0].filters=32 "
              "--set 'train.optimizer={kind: sgd}'. VALUE is read as YAML.")
@click.option("--print-spec", is_flag=True,
              help="Print the resolved spec (overrides applied) and its shape table, and exit.")
@click.option("--iterations", type=SIZE, help="Override train.iterations.")
@click.option("--epochs", type=SIZE, help="Override train.epochs.")
@click.option("--batch-size", type=SIZE, help="Override train.batch_size.")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True),
              help="Override the optimizer's learning rate.")
@click.option("--dataset", type=click.Choice(DATASET_NAMES),
              help="Override train.dataset.")
@click.option("--data", "data", type=click.Path(),
              help="Train on your own data: a folder of class folders (or of train/, val/, "
              "test/ trees of them), a folder of IDX files, a .csv (image paths and labels, or "
              "label and pixel columns) or a .npz (x_train, y_train, x_test, y_test). Replaces "
              "train.dataset, keeping its split and image options.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Folder with a built-in dataset's IDX files (else $CONVSPEC_DATA_DIR, the "
              "cache, system copies, a download, or for MNIST the bundled 5,000-image sample).")
@click.option("--seed", type=SEED, help="Override train.seed.")
@click.option("--validate-every", type=_Interval(),
              help="Validation loss and accuracy every N iterations or every 'epoch' "
              "(train.validate_every; default: epoch).")
@click.option("--patience", type=COUNT,
              help="Early stopping: stop after N validations without improvement "
              "(train.early_stopping.patience).")
@click.option("--min-delta", type=FiniteFloat(min=0),
              help="Early stopping: the smallest change that counts as an improvement "
              "(train.early_stopping.min_delta).")
@click.option("--monitor", type=click.Choice(["val_loss", "val_accuracy"]),
              help="The validation metric that picks best.safetensors (train.best.monitor) "
              "and that early stopping watches.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run directory (default: runs/<name>-<timestamp>).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True),
              help="Continue the run in this directory from its checkpoint.")
@click.option("--checkpoint-every", type=SIZE,
              help="Checkpoint interval in iterations (default: the validation interval).")
@click.option("--tensorboard/--no-tensorboard", default=True, show_default=True,
              help="TensorBoard event files in the run directory (tensorboard --logdir runs).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when stderr is a terminal).")
@click.option("--verbose", "-v", is_flag=True,
              help="Also print details: where data was looked for, and why a fallback was used.")
@click.option("--plots", is_flag=True, help="Write all plots into the run directory at the end.")
@click.option("--nproc", type=SIZE, default=1, show_default=True,
              help="Data-parallel replicas. torch: N processes under torchrun "
              "(DistributedDataParallel; gloo on CPU, NCCL on GPU). tensorflow: N local "
              "devices under MirroredStrategy (TF_CONFIG adds hosts). The batch size stays "
              "the global batch.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
              help="Compute precision: fp32 (default; a resumed run keeps its own), or mixed "
              "bf16 / fp16 (float32 weights and updates; fp16 with dynamic loss scaling).")
@threads_option
@click.option("--compile", "--jit", "jit", is_flag=True,
              help="Compile the training step with the framework's compiler: torch.compile "
              "(torch) or XLA (tensorflow). Opt-in: compilation costs time on the first step, "
              "reported separately.")
@reference_check_option
def command(spec_path: str | None, backend: str | None, device: str, resume: str | None,
            settings: tuple[str, ...], print_spec: bool, tensorboard: bool,
            progress: bool | None, verbose: bool, plots: bool, nproc: int,
            precision: str | None, jit: bool, reference_check: bool,
            **overrides: object) -> None:
    """Train SPEC's network and write a run directory.

    Prints the tutorial's progress lines, validation loss and accuracy and the test accuracy,
    and leaves in the run directory the spec as used, config, metrics (JSONL and CSV), final
    metrics, canonical weights (usable by any backend), the best validation result's weights,
    TensorBoard event files and a checkpoint for --resume. Ctrl-C saves a checkpoint.
    """
    from ..backends import launch
    from ..train import TrainOptions, plan_training, run_training
    from ._launch import command_args
    from .progress import progress_display

    with reporting(), verbose_logging(verbose):
        overrides["set"] = _settings(settings)
        opts = TrainOptions(spec_path=spec_path, backend=backend, device=device, resume=resume,
                            plots=plots, nproc=nproc, precision=precision, jit=jit,
                            tensorboard=tensorboard, reference_check=reference_check,
                            overrides=overrides)
        plan = plan_training(opts)
        if print_spec:
            _print_spec(plan.spec)
            return
        if nproc > 1:  # a backend that trains one process per device starts them here
            args = ["train", *command_args(click.get_current_context(), {"nproc"})]
            code = launch(plan.backend, nproc, args)
            if code is not None:
                sys.exit(code)
        run_training(plan, progress=progress_display(progress))


def _print_spec(spec: Any) -> None:
    from ..run_directory import spec_yaml
    from ..summary import format_table

    table = spec.table
    click.echo(f"# {spec.name}, as it would train (overrides applied, defaults written out)")
    click.echo(spec_yaml(spec), nl=False)
    click.echo(f"\n# input {'x'.join(map(str, table.input))}, {spec.classes} classes, "
               f"{table.params:,} parameters, {table.macs:,} MACs per image")
    click.echo("\n".join(f"# {line}" for line in format_table(table).splitlines()))
