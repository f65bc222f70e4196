"""What ``convspec train`` does, as one library call: plan, load, compile, train, evaluate, write.

Kept apart from the CLI so tests and scripts run the exact same path as the command line. The
order matters: the spec, the data and the backend are checked to fit together (and the model
compiled) before a new run directory is created, and a resumed run's checkpoint is read and
checked before anything in its directory is rewritten.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends import compile_model, device_memory, parallel_layout
from ..data.dataset import Dataset
from ..data.loader import load_data
from ..data.preprocess import Preprocessing
from ..data.record import data_record
from ..distributed import Parallel, describe
from ..evaluation import Evaluation, evaluate
from ..memory import available_memory, check_memory, data_values, estimate_memory
from ..run_config import RunConfig
from ..run_directory import RunDirectory
from ..verification import check_model
from .callbacks import Callback
from .options import TrainOptions, TrainPlan, plan_training
from .sampler import check_batch_size
from .tensorboard_log import TensorBoard
from .trainer import ProgressFactory, Trainer, TrainResult, quiet


@dataclass
class TrainOutcome:
    run_dir: Path | None  # None on the non-primary ranks of a new parallel run
    result: TrainResult
    test: Evaluation | None  # None on the non-primary ranks of a parallel run


def _log(msg: str) -> None:
    print(msg, flush=True)


def run_training(plan: TrainPlan | TrainOptions, *, log: Any = _log,
                 progress: ProgressFactory | None = None,
                 callbacks: Sequence[Callback] = ()) -> TrainOutcome:
    """Everything ``convspec train`` does; returns the run directory and results.

    ``log`` receives the tutorial's lines; ``progress``, when given, makes a progress display
    for the training loop (the primary rank only); ``callbacks`` are added to the Trainer's
    (after TensorBoard's, unless ``options.tensorboard`` is off). Raises ``ConvspecError``
    subclasses for bad options, a spec its backend cannot train or that does not fit the
    data, a checkpoint of another network, NaN losses (``TrainingDiverged``) and Ctrl-C
    (``Interrupted``, after a checkpoint).
    """
    if isinstance(plan, TrainOptions):
        plan = plan_training(plan)
    spec, opts = plan.spec, plan.options
    parallel = parallel_layout(plan.backend, opts.nproc)
    parallel.check_batch(spec.train.batch_size)
    if not parallel.is_primary:
        log = quiet
    elif plan.resume is None:
        RunDirectory.check_new(plan.out)  # a taken or unwritable --out fails before any work
    for note in plan.data_notes:
        log(f"Note: {note}")
    check_run_memory(plan)  # before anything is loaded or allocated
    data = load_data(spec, data_dir=plan.data_dir, preprocessing=_recorded(plan), log=log)
    data.check_fits(spec)
    check_batch_size(spec, len(data.train))
    extra: dict[str, Any] = {"parallel": parallel} if parallel.enabled else {}
    if plan.precision != "fp32":
        extra["precision"] = plan.precision
    if opts.jit:
        extra["jit"] = True
    model = compile_model(plan.backend, spec, device=opts.device, **extra)
    try:
        if opts.reference_check:  # before any step, and before the run directory exists
            took = check_model(model).seconds
            log(f"Checked the {plan.backend.name} model against the NumPy reference "
                f"({took * 1000:.0f} ms)")
        return _train(plan, model, data, parallel, log, progress, callbacks)
    finally:
        close = getattr(model, "close", None)
        if close is not None:
            close()


def check_run_memory(plan: TrainPlan) -> None:
    """Refuse (``MemoryLimitError``) a run whose memory estimate (``convspec.memory``)
    exceeds the memory available: main memory, and the GPU's free memory when training on one
    (asked of the backend, which is about to be compiled anyway)."""
    values, images = data_values(plan.data)
    batch = plan.spec.train.batch_size if images is None else min(plan.spec.train.batch_size,
                                                                   images)
    estimate = estimate_memory(plan.spec, batch_size=batch, data_values=values,
                               precision=plan.precision)
    check_memory(plan.spec, estimate, host=available_memory(),
                 device=device_memory(plan.backend, plan.options.device))


def _train(plan: TrainPlan, model: Any, data: Dataset, parallel: Parallel, log: Any,
           progress: ProgressFactory | None, callbacks: Sequence[Callback]) -> TrainOutcome:
    spec, opts, primary = plan.spec, plan.options, parallel.is_primary
    run = plan.resume
    logging = [TensorBoard()] if opts.tensorboard and primary else []
    trainer = Trainer(spec, model, data, run_dir=run,
                      checkpoint_every=plan.overrides.get("checkpoint_every"), log=log,
                      callbacks=[*logging, *callbacks])
    if run is None and primary:  # the last check passed: only now is anything written
        run = trainer.run = RunDirectory.create(spec, _config(plan, data, parallel),
                                                out=plan.out)
    for line in _describe_data(data):
        log(line)
    if parallel.enabled:
        log(describe(parallel, spec.train.batch_size))
    precision = "" if plan.precision == "fp32" else f" in {plan.precision}"
    log(f"Training {spec.name} with {plan.backend.name} on {model.device}{precision}; "
        f"run directory {run.path if run else plan.out}")
    if plan.resume is not None:
        trainer.resume()  # reads and checks the checkpoint before the spec is rewritten
        if ("iterations" in plan.overrides or "data" in plan.overrides) and primary:
            plan.resume.write_spec(spec)
    if primary and progress is not None and trainer.iteration < trainer.iterations:
        display = progress(trainer.iterations, trainer.iteration)
        trainer.progress, trainer.log = display, display.log
    result = trainer.fit()
    if opts.jit and result.first_step_seconds is not None:
        log(f"Compilation: the first step took {result.first_step_seconds:.1f} s "
            f"(included in the time above)")
    if not primary or run is None:
        return TrainOutcome(run.path if run else None, result, None)
    test = evaluate(model, data.test, spec.train.eval_batch_size)
    log(test.summary())
    trainer.callbacks.call("on_test_end", trainer, test)
    run.save_weights(model.get_weights(), spec,
                     {"backend": plan.backend.name, "iterations": str(result.iterations)})
    run.write_final({
        "iterations": result.iterations, "elapsed_seconds": round(result.elapsed, 3),
        "first_step_seconds": (None if result.first_step_seconds is None
                               else round(result.first_step_seconds, 3)),
        "backend": plan.backend.name, "dataset": data.name, "is_sample": data.is_sample,
        "val_accuracy": result.val_accuracy, "val_loss": result.val_loss,
        "stopped_early": result.stopped_early, "best": _best(trainer, result, test, log),
        "test": test.to_dict()})
    if opts.plots:
        from ..report import Run

        for figure in Run.trained(run, spec, model=model, data=data, evaluation=test).plots():
            log(f"wrote {figure.path}")
    log(f"Run directory: {run.path}")
    return TrainOutcome(run.path, result, test)


def _recorded(plan: TrainPlan) -> Preprocessing | None:
    """A resumed run's recorded preprocessing (its mean and std are not computed again)."""
    record = plan.resume.config.data_record() if plan.resume and plan.resume.config else None
    return None if record is None else Preprocessing.from_dict(record.preprocessing)


def _best(trainer: Trainer, result: TrainResult, last: Evaluation,
          log: Any) -> dict[str, Any] | None:
    """``final.json``'s ``best``: the best validation result and its test accuracy (the model
    keeps the last weights, which weights.safetensors and the figures show)."""
    best = trainer.best
    if best is None or best.weights is None or result.best is None:
        return None
    if result.best["iteration"] == result.iterations:
        test = last
    else:
        weights = trainer.model.get_weights()
        trainer.model.set_weights(best.weights)
        test = evaluate(trainer.model, trainer.data.test, trainer.spec.train.eval_batch_size)
        trainer.model.set_weights(weights)
    log(f"Best {result.best['monitor']} {result.best['value']:.4f} at iteration "
        f"{result.best['iteration']} (best.safetensors): "
        f"{test.summary().replace('Accuracy on', 'accuracy on')}")
    return {**result.best, "test_accuracy": test.accuracy, "test_loss": test.loss}


def _describe_data(data: Dataset) -> list[str]:
    lines = ["Size of:", f"- Training-set:\t\t{len(data.train)}",
             f"- Validation-set:\t{len(data.validation)}", f"- Test-set:\t\t{len(data.test)}",
             f"(from {data.source})"]
    if data.preprocessing.mean is not None:
        lines.append(f"Preprocessing: {data.preprocessing.formula()}")
    return lines


def _config(plan: TrainPlan, data: Dataset, parallel: Parallel) -> RunConfig:
    import numpy

    from .. import __version__

    opts = plan.options
    return RunConfig(
        backend=plan.backend.name, device=opts.device, dataset=data.name,
        data_dir=str(plan.data_dir) if plan.data_dir else None, precision=plan.precision,
        compiled=opts.jit, data=data_record(data, plan.spec.train.dataset,
                                            str(plan.data_dir) if plan.data_dir else None),
        record={"data_source": data.source, "is_sample": data.is_sample,
                "sizes": {"train": len(data.train), "validation": len(data.validation),
                          "test": len(data.test)},
                "overrides": plan.overrides,
                "parallel": {"processes": parallel.processes,
                             "devices_per_process": parallel.local_devices,
                             "launcher": parallel.launcher},
                "command": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": {"convspec": __version__, "python": platform.python_version(),
                             "numpy": numpy.__version__}})
