"""The run directory and its one owner, ``RunDirectory``: everything a training run leaves.

``runs/<spec-name>-<timestamp>/`` (or ``--out``) holds the spec as used (``spec.yaml``), how
the run was made (``config.json``), metrics (``metrics.jsonl`` and ``metrics.csv``), final
metrics (``final.json``), the canonical weights (``weights.safetensors``, the last step's),
the weights of the best validation result (``best.safetensors``, its iteration and metric in
the file's metadata and in ``final.json``), the latest checkpoint (``checkpoint.safetensors``:
weights, optimizer state, sampler state, iteration and the loop's own state in one file,
``convspec.checkpoint``) and TensorBoard event files (``events.out.tfevents.*``, written by
``convspec.train.tensorboard_log``). ``RunDirectory`` is the only code that reads or writes
the others. Every write
is atomic (a temporary file in the same folder, flushed, then ``os.replace``) or an append, so
an interruption never leaves half a file; ``config.json`` is read once, when a run is opened,
and validated as it is read (``convspec.run_config.RunConfig``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint
from .architecture import architecture_metadata, check_architecture
from .atomic_files import atomic_write, atomic_write_text
from .checkpoint import CHECKPOINT_FORMAT, Checkpoint
from .errors import RunDirectoryError, UsageError, WeightsError
from .run_config import RunConfig
from .specification import Spec, load_spec
from .weights import check_weights, load_weights, save_weights

SPEC_FILE = "spec.yaml"
CONFIG_FILE = "config.json"
METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
FINAL_FILE = "final.json"
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
BEST_FILE = "best.safetensors"
# loss and train_accuracy: means over the steps since the previous log line; lr: this step's
METRIC_FIELDS = ("iteration", "loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                 "elapsed")


def read_metrics_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file, one JSON object per line (blank lines skipped).

    Raises ``RunDirectoryError`` naming the file and line of the first bad record.
    """
    path = Path(path)
    records = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RunDirectoryError(
                f"{path}:{number}: not a JSON record ({exc.msg}); each line of {METRICS_JSONL} "
                "must be one JSON object. The file may be truncated or corrupt.") from None
        if not isinstance(record, dict):
            raise RunDirectoryError(f"{path}:{number}: expected a JSON object, got "
                                    f"{line.strip()!r}.")
        records.append(record)
    return records


class MetricsLog:
    """One record per logged step, appended to ``metrics.jsonl`` and ``metrics.csv``."""

    def __init__(self, jsonl: Path, csv_path: Path, records: list[dict[str, Any]]):
        self.jsonl, self.csv, self.records = jsonl, csv_path, records
        atomic_write_text(jsonl, "".join(json.dumps(r) + "\n" for r in records))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=METRIC_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
        atomic_write_text(csv_path, table.getvalue())

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with open(self.jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        with open(self.csv, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=METRIC_FIELDS, extrasaction="ignore").writerow(record)


class RunDirectory:
    """The owner of one run directory's files.

    ``RunDirectory.create`` makes a new run, ``RunDirectory.open`` opens an existing one
    (reading and validating ``config.json``), and ``RunDirectory(path)`` attaches to a folder
    that only holds training state (a ``Trainer`` without the CLI: checkpoints and metrics).
    """

    def __init__(self, path: str | os.PathLike[str], config: RunConfig | None = None):
        self.path = Path(path)
        self.config = config  # None unless created or opened

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # -- creating and opening ---------------------------------------------------------------
    @staticmethod
    def check_new(out: str | os.PathLike[str]) -> Path:
        """``out`` as a Path, or ``UsageError`` when it exists and is not empty."""
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UsageError(f"--out {path} exists and is not empty; choose another directory "
                             f"(or --resume it)")
        return path

    @classmethod
    def create(cls, spec: Spec, config: RunConfig, *, out: str | os.PathLike[str] | None = None,
               root: str | os.PathLike[str] = "runs") -> RunDirectory:
        """A new run: ``out`` (empty or absent) or a fresh ``<root>/<name>-<YYYYmmdd-HHMMSS>``
        (suffixed ``-2``, ``-3`` ... if taken), holding ``spec.yaml`` and ``config.json``."""
        if out is not None:
            path = cls.check_new(out)
            path.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(root) / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            base.parent.mkdir(parents=True, exist_ok=True)
            path, n = base, 1
            while not _made(path):  # mkdir, not exists(): two runs never share a name
                n += 1
                path = base.with_name(f"{base.name}-{n}")
        run = cls(path, config)
        run.write_spec(spec)
        atomic_write_text(path / CONFIG_FILE, json.dumps(config.to_dict(), indent=2,
                                                         sort_keys=True) + "\n")
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDirectory:
        """An existing run directory, its ``config.json`` read and validated (one-line
        ``RunDirectoryError`` naming the file when it is missing, not JSON, not an object,
        lacks a field or has one of the wrong type)."""
        path = Path(path)
        if not path.is_dir():
            raise RunDirectoryError(f"{path}: no such run directory")
        config = path / CONFIG_FILE
        if not config.is_file():
            raise RunDirectoryError(f"{config}: missing; is {path} a convspec run directory?")
        return cls(path, RunConfig.from_json(_read_text(config), str(config)))

    # -- the spec ---------------------------------------------------------------------------
    def load_spec(self) -> Spec:
        """The spec the run used (``spec.yaml``), validated."""
        return load_spec(self.path / SPEC_FILE)

    def has_spec(self) -> bool:
        return (self.path / SPEC_FILE).is_file()

    def spec_text(self) -> str:
        return (self.path / SPEC_FILE).read_text(encoding="utf-8")

    def write_spec(self, spec: Spec) -> None:
        header = "# The spec exactly as this run used it (CLI overrides applied, names resolved).\n"
        atomic_write_text(self.path / SPEC_FILE, header + spec_yaml(spec))

    # -- metrics ----------------------------------------------------------------------------
    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record of ``metrics.jsonl`` (``RunDirectoryError`` when there is none)."""
        path = self.path / METRICS_JSONL
        if not path.is_file():
            raise RunDirectoryError(f"No training metrics at {path}: expected a run directory "
                                    f"containing {METRICS_JSONL}.")
        return read_metrics_file(path)

    def metrics_log(self, *, keep_until: int | None = None) -> MetricsLog:
        """The metrics log to append to, with the records logged so far; when resuming
        (``keep_until``), records after that iteration are dropped from both files."""
        jsonl = self.path / METRICS_JSONL
        records = read_metrics_file(jsonl) if jsonl.is_file() else []
        if keep_until is not None:
            records = [r for r in records if r.get("iteration", 0) <= keep_until]
        return MetricsLog(jsonl, self.path / METRICS_CSV, records)

    # -- checkpoint and weights -------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT_FILE).is_file()

    def save_checkpoint(self, spec: Spec, ckpt: Checkpoint) -> Path:
        """Write the full training state as one safetensors file, replaced atomically."""
        from safetensors.numpy import save_file

        check_weights(spec, ckpt.weights)
        arrays, meta = checkpoint.encode(ckpt, architecture_metadata(spec))
        path = self.path / CHECKPOINT_FILE
        atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=meta))
        return path

    def load_checkpoint(self, spec: Spec) -> Checkpoint:
        """The checkpoint, checked to belong to ``spec``'s network (``WeightsError``)."""
        if not self.has_checkpoint():
            raise WeightsError(f"{self.path}: no checkpoint to resume from ({CHECKPOINT_FILE} "
                               f"missing)")
        return read_checkpoint(self.path / CHECKPOINT_FILE, spec)

    def save_weights(self, weights: Mapping[str, np.ndarray], spec: Spec,
                     metadata: Mapping[str, str] | None = None) -> Path:
        """The final canonical weights (``weights.safetensors``, atomic)."""
        return save_weights(self.path / WEIGHTS_FILE, weights, spec, metadata)

    def save_best_weights(self, weights: Mapping[str, np.ndarray], spec: Spec,
                          metadata: Mapping[str, str] | None = None) -> Path:
        """The weights of the best validation result (``best.safetensors``, atomic)."""
        return save_weights(self.path / BEST_FILE, weights, spec, metadata)

    def load_weights(self, spec: Spec) -> dict[str, np.ndarray]:
        """The final weights, else the checkpoint's, checked against ``spec``."""
        if (self.path / WEIGHTS_FILE).is_file():
            return load_weights(self.path / WEIGHTS_FILE, spec)
        if self.has_checkpoint():
            return self.load_checkpoint(spec).weights
        raise WeightsError(f"{self.path}: no {WEIGHTS_FILE} or {CHECKPOINT_FILE} in this "
                           f"directory")

    # -- final metrics ----------------------------------------------------------------------
    def write_final(self, final: Mapping[str, Any]) -> None:
        atomic_write_text(self.path / FINAL_FILE, json.dumps(final, indent=2, sort_keys=True)
                          + "\n")

    def read_final(self) -> dict[str, Any]:
        """``final.json``, or an empty dict for a run that has not finished."""
        path = self.path / FINAL_FILE
        if not path.is_file():
            return {}
        try:
            final = json.loads(_read_text(path))
        except ValueError as exc:
            raise RunDirectoryError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(final, dict):
            raise RunDirectoryError(f"{path}: expected a JSON object, got "
                                    f"{type(final).__name__}")
        return final


def spec_yaml(spec: Spec) -> str:
    """The spec as YAML text (names resolved, defaults written out), as ``spec.yaml`` holds it."""
    import yaml

    return yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=None)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirectoryError(f"{path}: unreadable ({exc})") from None


def _made(path: Path) -> bool:
    try:
        path.mkdir()
    except FileExistsError:
        return False
    return True


def read_checkpoint(path: Path, spec: Spec) -> Checkpoint:
    """A checkpoint file's training state, checked against ``spec`` (``WeightsError``)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: f.get_tensor(k) for k in f.keys()}
        ckpt = checkpoint.decode(arrays, meta)
    except Exception as exc:
        raise WeightsError(f"{path}: cannot resume from this checkpoint ({exc})") from None
    check_architecture(meta, spec, str(path), "the checkpoint")
    check_weights(spec, ckpt.weights, str(path))
    return ckpt


def resolve_weights(source: str | os.PathLike[str], spec: Spec) -> dict[str, np.ndarray]:
    """Weights from a run directory (final weights, else its checkpoint), a checkpoint file or
    a weights file, checked against ``spec`` (``WeightsError``)."""
    path = Path(source)
    if path.is_dir():
        return RunDirectory(path).load_weights(spec)
    if path.suffix == ".safetensors" and path.is_file() and _is_checkpoint(path):
        return read_checkpoint(path, spec).weights
    return load_weights(path, spec)


def _is_checkpoint(path: Path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return (f.metadata() or {}).get("format") == CHECKPOINT_FORMAT
    except Exception:  # unreadable: load_weights reports it
        return False
