"""What ``convspec train`` does, as a library call: resolve, load, compile, train, report.

Kept apart from the CLI so tests and scripts run the exact same path as the command line.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends import get_backend
from .data import Dataset, load_dataset
from .distributed import SINGLE, Parallel, describe, from_tf_config, from_torchrun
from .errors import UsageError
from .evaluation import Evaluation, evaluate
from .precision import check_precision
from .runs import (
    CONFIG_FILE,
    FINAL_FILE,
    WEIGHTS_FILE,
    load_run_spec,
    new_run_dir,
    read_json,
    write_json,
    write_spec,
)
from .specification import Spec, load_spec, validate_spec
from .train import Trainer, TrainResult, quiet
from .weights import save_weights


@dataclass
class TrainOptions:
    spec_path: str | None = None
    backend: str | None = None
    device: str = "cpu"
    resume: str | None = None
    progress: bool | None = None
    plots: bool = False
    nproc: int = 1  # tensorflow: local replicas (MirroredStrategy); torch: see the CLI
    precision: str | None = None  # fp32 (default), bf16 or fp16; see convspec.precision
    jit: bool = False  # torch.compile / XLA
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainOutcome:
    run_dir: Path
    result: TrainResult
    test: Evaluation | None  # None on the non-primary ranks of a parallel run


def apply_overrides(spec: Spec, overrides: dict[str, Any]) -> Spec:
    """A new, validated spec with CLI overrides applied to its ``train`` section."""
    data = spec.to_dict()
    train = data.setdefault("train", {})
    if overrides.get("iterations") is not None:
        train.pop("epochs", None)
        train["iterations"] = overrides["iterations"]
    if overrides.get("epochs") is not None:
        if overrides.get("iterations") is not None:
            raise UsageError("give either --iterations or --epochs, not both")
        train.pop("iterations", None)
        train["epochs"] = overrides["epochs"]
    for key in ("batch_size", "dataset", "seed"):
        if overrides.get(key) is not None:
            train[key] = overrides[key]
    if overrides.get("lr") is not None:
        train["optimizer"]["learning_rate"] = overrides["lr"]
    return validate_spec(data, source=f"{spec.name} (with command-line overrides)")


def _log(msg: str) -> None:
    print(msg, flush=True)


class _Bar:
    """A rich progress bar on stderr; log lines print above it."""

    def __init__(self, total: int, done: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.progress = Progress("[progress.description]{task.description}", BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("training", total=total, completed=done)
        self.progress.start()

    def update(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def log(self, msg: str) -> None:
        self.progress.console.print(msg, markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


def _describe_data(data: Dataset) -> list[str]:
    return ["Size of:", f"- Training-set:\t\t{len(data.train)}",
            f"- Validation-set:\t{len(data.validation)}", f"- Test-set:\t\t{len(data.test)}",
            f"(from {data.source})"]


def resolve_parallel(opts: TrainOptions, backend: str) -> Parallel:
    """The data-parallel layout of this process: torchrun's environment (torch), TF_CONFIG
    or ``nproc`` local replicas (tensorflow), else a single process."""
    torchrun = from_torchrun()
    if backend == "torch":
        if opts.nproc > 1:
            raise UsageError(f"the torch backend trains on {opts.nproc} processes under "
                             f"torchrun: use `convspec train ... --nproc {opts.nproc}` (which "
                             f"starts torchrun) or `torchrun --nproc-per-node {opts.nproc} -m "
                             f"convspec train ...`")
        return torchrun or SINGLE
    if torchrun is not None and torchrun.processes > 1:
        raise UsageError(f"torchrun started this process, but the {backend} backend does not "
                         f"train under torchrun; for tensorflow use --nproc N (N local devices, "
                         f"MirroredStrategy) or TF_CONFIG (MultiWorkerMirroredStrategy)")
    if backend != "tensorflow":
        if opts.nproc > 1:
            raise UsageError(f"--nproc is supported by the torch and tensorflow backends, "
                             f"not {backend!r}")
        return SINGLE
    cluster = from_tf_config()
    if cluster is not None:
        return Parallel(processes=cluster.processes, rank=cluster.rank,
                        local_devices=opts.nproc, launcher="tf_config")
    if opts.nproc > 1:
        return Parallel(local_devices=opts.nproc, launcher="local")
    return SINGLE


def _config(opts: TrainOptions, backend: str, data: Dataset, data_dir: Any,
            parallel: Parallel) -> dict[str, Any]:
    import numpy

    from . import __version__

    return {"backend": backend, "device": opts.device,
            "precision": opts.precision or "fp32", "compiled": opts.jit,
            "dataset": data.name,
            "data_dir": str(data_dir) if data_dir else None, "data_source": data.source,
            "is_sample": data.is_sample,
            "sizes": {"train": len(data.train), "validation": len(data.validation),
                      "test": len(data.test)},
            "overrides": {k: v for k, v in opts.overrides.items() if v is not None},
            "parallel": {"processes": parallel.processes,
                         "devices_per_process": parallel.local_devices,
                         "launcher": parallel.launcher},
            "command": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": {"convspec": __version__, "python": platform.python_version(),
                         "numpy": numpy.__version__}}


def _resolve(opts: TrainOptions) -> tuple[Spec, str, Path | None, Any]:
    """(spec, backend name, run dir when resuming, data dir) from options or a run dir."""
    overrides = {k: v for k, v in opts.overrides.items() if v is not None}
    if opts.resume:
        run_dir = Path(opts.resume)
        config = read_json(run_dir / CONFIG_FILE)
        changed = sorted(set(overrides) - {"iterations", "data_dir", "checkpoint_every"})
        if changed:
            raise UsageError(f"cannot change {', '.join(changed)} when resuming; only "
                             f"--iterations (to extend the run) and --data-dir")
        recorded = config.get("precision", "fp32")
        if opts.precision not in (None, recorded):
            raise UsageError(f"{run_dir} trains in {recorded}; a run keeps its precision "
                             f"(--precision {opts.precision} was given)")
        opts.precision = recorded
        spec = load_run_spec(run_dir)
        if "iterations" in overrides:
            spec = apply_overrides(spec, {"iterations": overrides["iterations"]})
        data_dir = overrides.get("data_dir") or config.get("data_dir")
        return spec, opts.backend or config["backend"], run_dir, data_dir
    if not opts.spec_path:
        raise UsageError("missing SPEC (a YAML file such as specs/mnist.yaml), or --resume RUN")
    spec = apply_overrides(load_spec(opts.spec_path), overrides)
    return spec, opts.backend or "torch", None, overrides.get("data_dir")


def training_backend(opts: TrainOptions) -> str:
    """The canonical name of the backend a training run will use (the run's own when
    resuming without --backend)."""
    from .backends import canonical_name

    if opts.backend is None and opts.resume:
        return canonical_name(str(read_json(Path(opts.resume) / CONFIG_FILE)["backend"]))
    return canonical_name(opts.backend or "torch")


def run_training(opts: TrainOptions, log: Any = _log) -> TrainOutcome:
    """Everything ``convspec train`` does; returns the run directory and results."""
    spec, backend_name, run_dir, data_dir = _resolve(opts)
    backend = get_backend(backend_name)
    parallel = resolve_parallel(opts, backend.name)
    parallel.check_batch(spec.train.batch_size)
    primary = parallel.is_primary
    if not primary:
        log = quiet
    data = load_dataset(spec.train.dataset, data_dir=data_dir,
                        validation_size=spec.train.validation_size, log=log)
    extra: dict[str, Any] = {"parallel": parallel} if parallel.enabled else {}
    if opts.precision not in (None, "fp32"):
        extra["precision"] = check_precision(opts.precision)
    if opts.jit:
        extra["jit"] = True
    model = backend.compile(spec, device=opts.device, **extra)
    try:
        return _train(opts, spec, backend.name, model, data, data_dir, run_dir, parallel, log)
    finally:
        close = getattr(model, "close", None)
        if close is not None:
            close()


def _new_run(opts: TrainOptions, spec: Spec, backend: str, data: Dataset, data_dir: Any,
             parallel: Parallel) -> Path:
    """The run directory of a new run, created and described by the primary rank only."""
    out = opts.overrides.get("out")
    if not parallel.is_primary:
        return Path(out) if out else Path("runs") / spec.name  # read by nobody
    run_dir = Path(out) if out else new_run_dir(spec)
    if out and run_dir.exists() and any(run_dir.iterdir()):
        raise UsageError(f"--out {run_dir} exists and is not empty; choose another "
                         f"directory (or --resume it)")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_spec(run_dir, spec)
    write_json(run_dir / CONFIG_FILE, _config(opts, backend, data, data_dir, parallel))
    return run_dir


def _train(opts: TrainOptions, spec: Spec, backend: str, model: Any, data: Dataset,
           data_dir: Any, run_dir: Path | None, parallel: Parallel, log: Any) -> TrainOutcome:
    primary = parallel.is_primary
    resuming = run_dir is not None
    if run_dir is None:
        run_dir = _new_run(opts, spec, backend, data, data_dir, parallel)
    elif opts.overrides.get("iterations") and primary:
        write_spec(run_dir, spec)
    for line in _describe_data(data):
        log(line)
    if parallel.enabled:
        log(describe(parallel, spec.train.batch_size))
    precision = "" if opts.precision in (None, "fp32") else f" in {opts.precision}"
    log(f"Training {spec.name} with {backend} on {model.device}{precision}; "
        f"run directory {run_dir}")
    trainer = Trainer(spec, model, data, run_dir=run_dir,
                      checkpoint_every=opts.overrides.get("checkpoint_every"), log=log)
    if resuming:
        trainer.resume()
    show_bar = opts.progress if opts.progress is not None else sys.stderr.isatty()
    if primary and show_bar and trainer.iteration < trainer.iterations:
        bar = _Bar(trainer.iterations, trainer.iteration)
        trainer.progress, trainer.log = bar, bar.log
    result = trainer.fit()
    if opts.jit and result.first_step_seconds is not None:
        log(f"Compilation: the first step took {result.first_step_seconds:.1f} s "
            f"(included in the time above)")
    if not primary:
        return TrainOutcome(run_dir, result, None)
    test = evaluate(model, data.test, spec.train.eval_batch_size)
    log(test.summary())
    save_weights(run_dir / WEIGHTS_FILE, model.get_weights(), spec,
                 {"backend": backend, "iterations": str(result.iterations)})
    write_json(run_dir / FINAL_FILE, {
        "iterations": result.iterations, "elapsed_seconds": round(result.elapsed, 3),
        "first_step_seconds": (None if result.first_step_seconds is None
                               else round(result.first_step_seconds, 3)),
        "backend": backend, "dataset": data.name, "is_sample": data.is_sample,
        "val_accuracy": result.val_accuracy, "test": test.to_dict()})
    if opts.plots:
        from .viz.run_figures import write_run_plots

        for path in write_run_plots(run_dir, data=data, model=model, evaluation=test):
            log(f"wrote {path}")
    log(f"Run directory: {run_dir}")
    return TrainOutcome(run_dir, result, test)
