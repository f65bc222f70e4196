"""``convspec train SPEC``."""

from __future__ import annotations

import sys

import click

from ._util import reporting, threads_option


@click.command("train")
@click.argument("spec_path", metavar="SPEC", required=False, type=click.Path(dir_okay=False))
@click.option("--backend", "-b", default=None,
              help="Backend: torch (default) or tensorflow (tf), or any registered plugin; "
              "with --resume, the run's own backend unless given.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu",
              show_default=True, help="Where to train.")
@click.option("--iterations", type=click.IntRange(min=1), help="Override train.iterations.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override train.epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Override train.batch_size.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="Override the optimizer's learning rate.")
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist"]),
              help="Override train.dataset.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Folder with the dataset's IDX files (else $CONVSPEC_DATA_DIR, the cache, "
              "system copies, a download, or for MNIST the bundled 5,000-image sample).")
@click.option("--seed", type=click.IntRange(min=0), help="Override train.seed.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run directory (default: runs/<name>-<timestamp>).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True),
              help="Continue the run in this directory from its checkpoint.")
@click.option("--checkpoint-every", type=click.IntRange(min=1),
              help="Checkpoint interval in iterations (default: train.validate_every).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when stderr is a terminal).")
@click.option("--plots", is_flag=True, help="Write all plots into the run directory at the end.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
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
def command(spec_path: str | None, backend: str | None, device: str, resume: str | None,
            progress: bool | None, plots: bool, nproc: int, precision: str | None,
            jit: bool, **overrides: object) -> None:
    """Train SPEC's network and write a run directory.

    Prints the tutorial's progress lines and the test accuracy, and leaves in the run
    directory the spec as used, config, metrics (JSONL and CSV), final metrics, canonical
    weights (usable by any backend) and a checkpoint for --resume. Ctrl-C saves a checkpoint.
    """
    from ..session import TrainOptions, run_training, training_backend

    opts = TrainOptions(spec_path=spec_path, backend=backend, device=device, resume=resume,
                        progress=progress, plots=plots, nproc=nproc, precision=precision,
                        jit=jit, overrides=overrides)
    with reporting():
        if nproc > 1 and training_backend(opts) == "torch":
            from ._launch import command_args, launch_torchrun

            args = ["train", *command_args(click.get_current_context(), {"nproc"})]
            sys.exit(launch_torchrun(nproc, args))
        run_training(opts)
