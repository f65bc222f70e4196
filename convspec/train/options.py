"""What ``convspec train`` was asked for, and the plan it resolves to before any work starts.

``TrainOptions`` are the command's options as given; ``plan_training`` turns them into a
``TrainPlan``: the spec with its overrides, the backend, the precision and the data folder,
taken from the run directory itself when resuming (whose ``config.json`` is read there, once).
Nothing is loaded, compiled or written yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends import Backend, check_support, get_backend
from ..errors import UsageError
from ..precision import check_precision
from ..run_directory import RunDirectory
from ..specification import Spec, load_spec

# What a resumed run may change: its length, where its data is, how often it checkpoints.
RESUMABLE = ("iterations", "data_dir", "checkpoint_every")


@dataclass
class TrainOptions:
    """The options of ``convspec train``; ``overrides`` holds the spec overrides (iterations,
    epochs, batch_size, lr, dataset, seed) and data_dir, out, checkpoint_every."""

    spec_path: str | None = None
    backend: str | None = None  # default: torch, or the run's own when resuming
    device: str = "cpu"
    resume: str | None = None
    plots: bool = False
    nproc: int = 1  # data-parallel replicas; how they run is the backend's parallel_layout
    precision: str | None = None  # fp32 (default), bf16 or fp16; see convspec.precision
    jit: bool = False  # torch.compile / XLA
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainPlan:
    """A training run resolved from its options, before any data is loaded or file written.

    ``resume`` is the opened run directory when resuming; ``out`` the requested directory of a
    new run (None: ``runs/<name>-<timestamp>``).
    """

    options: TrainOptions
    spec: Spec
    backend: Backend
    precision: str
    data_dir: str | None
    resume: RunDirectory | None
    out: Path | None

    @property
    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.overrides.items() if v is not None}


# The train command's spec options and the spec setting each one changes.
OPTION_PATHS = {"iterations": "train.iterations", "epochs": "train.epochs",
                "batch_size": "train.batch_size", "lr": "train.optimizer.learning_rate",
                "dataset": "train.dataset", "seed": "train.seed"}


def apply_overrides(spec: Spec, overrides: dict[str, Any]) -> Spec:
    """``spec`` with the command's spec options applied (``Spec.override``: validated like a
    file, a located SpecError otherwise); options that are None or not spec settings are
    ignored. Setting iterations drops the spec's epochs and vice versa; giving both is a
    ``UsageError``."""
    changes = {OPTION_PATHS[k]: v for k, v in overrides.items()
               if k in OPTION_PATHS and v is not None}
    if "train.iterations" in changes and "train.epochs" in changes:
        raise UsageError("give either --iterations or --epochs, not both")
    return spec.override(changes) if changes else spec


def plan_training(opts: TrainOptions) -> TrainPlan:
    """Resolve ``opts`` into a plan: a new run from ``opts.spec_path``, or the run in
    ``opts.resume`` with only ``RESUMABLE`` changes (``UsageError`` otherwise; a run also keeps
    its precision)."""
    overrides = {k: v for k, v in opts.overrides.items() if v is not None}
    if opts.resume:
        return _plan_resume(opts, overrides)
    if not opts.spec_path:
        raise UsageError("missing SPEC (a YAML file such as specs/mnist.yaml), or --resume RUN")
    spec = apply_overrides(load_spec(opts.spec_path), overrides)
    out = Path(overrides["out"]) if overrides.get("out") else None
    precision = check_precision(opts.precision) if opts.precision else "fp32"
    backend = get_backend(opts.backend or "torch")
    check_support(backend, spec)  # before any data is loaded or directory made
    return TrainPlan(opts, spec, backend, precision, overrides.get("data_dir"), None, out)


def _plan_resume(opts: TrainOptions, overrides: dict[str, Any]) -> TrainPlan:
    run = RunDirectory.open(opts.resume)  # type: ignore[arg-type]
    assert run.config is not None
    changed = sorted(set(overrides) - set(RESUMABLE))
    if changed:
        raise UsageError(f"cannot change {', '.join(changed)} when resuming; only "
                         f"--iterations (to extend the run) and --data-dir")
    recorded = check_precision(run.config.precision)
    if opts.precision not in (None, recorded):
        raise UsageError(f"{run.path} trains in {recorded}; a run keeps its precision "
                         f"(--precision {opts.precision} was given)")
    spec = run.load_spec()
    if "iterations" in overrides:
        spec = apply_overrides(spec, {"iterations": overrides["iterations"]})
    backend = get_backend(opts.backend or run.config.backend)
    return TrainPlan(opts, spec, backend, recorded,
                     overrides.get("data_dir") or run.config.data_dir, run, None)
