"""What ``convspec train`` was asked for, and the plan it resolves to before any work starts.

``TrainOptions`` are the command's options as given; ``plan_training`` turns them into a
``TrainPlan``: the spec with its overrides and its data source (``--data PATH``, or the spec's
own with paths made absolute), the backend, the precision and the data folder, taken from the
run directory itself when resuming (whose ``config.json`` is read there, once). The data is
probed and checked against the spec (``convspec.data.fit``), so a mismatch is reported before
anything is loaded, compiled or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends import Backend, check_support, get_backend
from ..data.fit import check_fits
from ..data.probe import DataSummary, probe
from ..data.resolve import with_data
from ..errors import UsageError
from ..precision import check_precision
from ..run_directory import RunDirectory
from ..specification import Spec, load_spec
from ..specification.overrides import parse_path

# What a resumed run may change: its length, where its data is, how often it checkpoints.
RESUMABLE = ("iterations", "data_dir", "data", "checkpoint_every")


@dataclass
class TrainOptions:
    """The options of ``convspec train``; ``overrides`` holds the spec overrides (the shortcut
    options of ``OPTION_PATHS``, ``monitor``, and ``set``: ``{path: value}`` from ``--set``),
    data (a path: your own data), data_dir, out and checkpoint_every."""

    spec_path: str | None = None
    backend: str | None = None  # default: torch, or the run's own when resuming
    device: str = "cpu"
    resume: str | None = None
    plots: bool = False
    nproc: int = 1  # data-parallel replicas; how they run is the backend's parallel_layout
    precision: str | None = None  # fp32 (default), bf16 or fp16; see convspec.precision
    jit: bool = False  # torch.compile / XLA
    tensorboard: bool = True  # event files in the run directory
    reference_check: bool = True  # the compiled model against the NumPy reference first
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
    data: DataSummary | None = None  # what the probe found
    data_notes: tuple[str, ...] = ()  # worth telling before training

    @property
    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.overrides.items() if v is not None}


# The train command's shortcut options and the spec setting each one changes.
OPTION_PATHS = {"iterations": "train.iterations", "epochs": "train.epochs",
                "batch_size": "train.batch_size", "lr": "train.optimizer.learning_rate",
                "dataset": "train.dataset", "seed": "train.seed",
                "validate_every": "train.validate_every",
                "patience": "train.early_stopping.patience",
                "min_delta": "train.early_stopping.min_delta"}


def spec_changes(spec: Spec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The changes (path -> value) that the command's options make to ``spec``, parents
    before children (``--set train.optimizer={kind: sgd} --lr 0.1`` is SGD at 0.1).

    The shortcut options of ``OPTION_PATHS``, then ``set`` (``--set``); ``monitor`` sets
    ``train.best.monitor`` and, when early stopping is on, ``train.early_stopping.monitor``.
    ``UsageError`` for --iterations with --epochs, or a shortcut and ``--set`` of one path.
    """
    changes = {OPTION_PATHS[k]: v for k, v in overrides.items()
               if k in OPTION_PATHS and v is not None}
    if "train.iterations" in changes and "train.epochs" in changes:
        raise UsageError("give either --iterations or --epochs, not both")
    flags = {path: option for option, path in OPTION_PATHS.items()}
    for path, value in (overrides.get("set") or {}).items():
        if path in changes:
            raise UsageError(f"--set {path}=... and --{flags[path].replace('_', '-')} both "
                             f"set {path}; give one")
        changes[path] = value
    monitor = overrides.get("monitor")
    if monitor is not None:
        changes["train.best.monitor"] = monitor
        stopping = changes.get("train.early_stopping", spec.train.early_stopping)
        if stopping is not None or any(p.startswith("train.early_stopping.") for p in changes):
            changes["train.early_stopping.monitor"] = monitor
    return dict(sorted(changes.items(), key=lambda item: _depth(item[0])))


def _depth(path: str) -> int:
    try:
        return len(parse_path(path))
    except ValueError:  # reported by Spec.override, with the others
        return 0


def apply_overrides(spec: Spec, overrides: dict[str, Any]) -> Spec:
    """``spec`` with the command's spec options applied (``spec_changes``, then
    ``Spec.override``: validated like a file, a located SpecError otherwise); options that are
    None or not spec settings are ignored. Setting iterations drops the spec's epochs and vice
    versa."""
    changes = spec_changes(spec, overrides)
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
    if overrides.get("data") and overrides.get("dataset"):
        raise UsageError("give either --data PATH (your own data) or --dataset NAME, not both")
    spec = apply_overrides(load_spec(opts.spec_path), overrides)
    spec = with_data(spec, spec_dir=Path(opts.spec_path).parent, data=overrides.get("data"))
    out = Path(overrides["out"]) if overrides.get("out") else None
    precision = check_precision(opts.precision) if opts.precision else "fp32"
    backend = get_backend(opts.backend or "torch")
    check_support(backend, spec)  # before any data is probed or loaded, or directory made
    data_dir = overrides.get("data_dir")
    summary, notes = probe_data(spec, data_dir)
    return TrainPlan(opts, spec, backend, precision, data_dir, None, out, summary, notes)


def probe_data(spec: Spec, data_dir: str | None) -> tuple[DataSummary, tuple[str, ...]]:
    """Probe the spec's data and check that it fits (``DataError`` otherwise)."""
    summary = probe(spec.train.dataset, data_dir=data_dir)
    return summary, tuple(check_fits(spec, summary))


def _plan_resume(opts: TrainOptions, overrides: dict[str, Any]) -> TrainPlan:
    run = RunDirectory.open(opts.resume)  # type: ignore[arg-type]
    assert run.config is not None
    changed = sorted(set(overrides) - set(RESUMABLE))
    if changed:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in changed)
        raise UsageError(f"cannot change {flags} when resuming (a resumed run continues "
                         f"exactly); only --iterations (to extend the run), --data or "
                         f"--data-dir (where the same data is now) and --checkpoint-every")
    recorded = check_precision(run.config.precision)
    if opts.precision not in (None, recorded):
        raise UsageError(f"{run.path} trains in {recorded}; a run keeps its precision "
                         f"(--precision {opts.precision} was given)")
    spec = _resumed(run.load_spec(), overrides)
    notes: tuple[str, ...] = ()
    if opts.spec_path:  # the run's own spec wins; another one is refused
        notes = (check_resume_spec(opts.spec_path, spec, run, overrides),)
    backend = get_backend(opts.backend or run.config.backend)
    check_support(backend, spec)
    data_dir = overrides.get("data_dir") or run.config.data_dir
    summary, data_notes = probe_data(spec, data_dir)
    return TrainPlan(opts, spec, backend, recorded, data_dir, run, None, summary,
                     notes + data_notes)


def _resumed(spec: Spec, overrides: dict[str, Any]) -> Spec:
    """A run's spec with what resuming may change (its length, where its data is)."""
    if "iterations" in overrides:
        spec = apply_overrides(spec, {"iterations": overrides["iterations"]})
    if overrides.get("data"):
        spec = with_data(spec, data=overrides["data"])
    return spec


def spec_difference(given: Spec, run_spec: Spec) -> str | None:
    """The first difference in network or training settings between two specs, as
    ``what: value in the given spec, value in the run's``; None when they train the same run
    (names and descriptions aside; data paths compared absolute)."""
    from ..architecture import fingerprint, first_difference, show_value

    names = [row.name for row in run_spec.table.rows]
    network = first_difference(fingerprint(run_spec), fingerprint(given), names)
    if network is not None:
        what, in_run, in_given = network
        return f"{what} is {show_value(in_given)} in SPEC, {show_value(in_run)} in the run's"
    for section in ("init", "train"):
        a = getattr(given, section).model_dump(mode="json")
        b = getattr(run_spec, section).model_dump(mode="json")
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return (f"{section}.{key} is {show_value(a.get(key))} in SPEC, "
                        f"{show_value(b.get(key))} in the run's")
    return None


def check_resume_spec(spec_path: str, run_spec: Spec, run: RunDirectory,
                      overrides: dict[str, Any]) -> str:
    """A SPEC given with ``--resume``: the note to print when it trains the same run as the
    run's own ``spec.yaml`` (which is what resumes; both with the resumable ``overrides``),
    else a ``UsageError`` saying which wins and how to change the run."""
    given = _resumed(with_data(load_spec(spec_path), spec_dir=Path(spec_path).parent),
                     overrides)
    difference = spec_difference(given, run_spec)
    if difference is None:
        return (f"{spec_path} is the spec of {run.path} (same network and training "
                f"settings); resuming with the run's own spec.yaml")
    hint = ("; to train longer, use --resume with --iterations N"
            if difference.startswith("train.iterations") or difference.startswith(
                "train.epochs") else "")
    raise UsageError(f"{spec_path} is not the spec of the run {run.path}: {difference} "
                     f"spec.yaml. --resume continues a run with its own spec.yaml; drop SPEC "
                     f"to resume it{hint}, or drop --resume to start a new run from {spec_path}")
