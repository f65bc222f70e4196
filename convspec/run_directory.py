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

import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint
from .architecture import architecture_metadata, check_architecture
from .atomic_files import (
    atomic_write,
    atomic_write_text,
    check_writable,
    remove_stale_temporaries,
)
from .checkpoint import CHECKPOINT_FORMAT, Checkpoint
from .checksum import with_checksum
from .errors import FileSystemError, RunDirectoryError, UsageError, WeightsError
from .run_config import RunConfig
from .run_metrics import (  # noqa: F401 -- re-exported: the run directory's file names
    METRIC_FIELDS,
    METRICS_CSV,
    METRICS_JSONL,
    MetricsLog,
    dumps,
    final_problem,
    read_metrics_file,
)
from .specification import Spec, load_spec
from .weights import check_values, check_weights, load_weights, read_safetensors, save_weights

SPEC_FILE = "spec.yaml"
CONFIG_FILE = "config.json"
FINAL_FILE = "final.json"
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
BEST_FILE = "best.safetensors"
# the files a run directory's writer replaces atomically (temporaries of killed writes)
WRITTEN = (SPEC_FILE, CONFIG_FILE, METRICS_JSONL, METRICS_CSV, FINAL_FILE, WEIGHTS_FILE,
           CHECKPOINT_FILE, BEST_FILE)


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
    def check_new(out: str | os.PathLike[str] | None, root: str | os.PathLike[str] = "runs"
                  ) -> Path | None:
        """``out`` as a Path (None stays None: ``<root>/<name>-<timestamp>``); ``UsageError``
        when it exists and is not empty, ``FileSystemError`` when it (or ``root``) could not
        be created there: a read-only file system or a folder without write permission."""
        path = None if out is None else Path(out)
        if path is not None and path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UsageError(f"--out {path} exists and is not empty; choose another directory "
                             f"(or --resume it)")
        target = Path(root) if path is None else path
        parent = next(p for p in (target, *target.absolute().parents) if p.exists())
        check_writable(parent, target, "cannot create")
        return path

    @classmethod
    def create(cls, spec: Spec, config: RunConfig, *, out: str | os.PathLike[str] | None = None,
               root: str | os.PathLike[str] = "runs") -> RunDirectory:
        """A new run: ``out`` (empty or absent) or a fresh ``<root>/<name>-<YYYYmmdd-HHMMSS>``
        (suffixed ``-2``, ``-3`` ... if taken), holding ``spec.yaml`` and ``config.json``.
        A failure (``FileSystemError``: a full disk, ...) removes what it made."""
        made: Path | None = None
        try:
            if out is not None:
                path = cls.check_new(out, root)
                assert path is not None
                made = None if path.exists() else path
                path.mkdir(parents=True, exist_ok=True)
            else:
                base = Path(root) / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
                base.parent.mkdir(parents=True, exist_ok=True)
                path, n = base, 1
                while not _made(path):  # mkdir, not exists(): two runs never share a name
                    n += 1
                    path = base.with_name(f"{base.name}-{n}")
                made = path
            run = cls(path, config)
            run.write_spec(spec)
            atomic_write_text(path / CONFIG_FILE, dumps(config.to_dict(), indent=2,
                                                        sort_keys=True) + "\n")
        except (OSError, FileSystemError) as exc:
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
            elif out is not None:
                for name in (SPEC_FILE, CONFIG_FILE):
                    (Path(out) / name).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise FileSystemError.from_os_error(exc, "cannot create the run directory:"
                                                    ) from None
            raise
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
        run = cls(path, RunConfig.from_json(_read_text(config), str(config)))
        remove_stale_temporaries(path)  # of writers killed mid-write (kill -9)
        return run

    def remove_temporaries(self) -> list[Path]:
        """Remove every temporary file an interrupted write left here, also those of older
        convspec versions (call only as the directory's one writer: a resumed run)."""
        return remove_stale_temporaries(self.path, legacy=WRITTEN)

    # -- the spec ---------------------------------------------------------------------------
    def load_spec(self) -> Spec:
        """The spec the run used (``spec.yaml``), validated."""
        return load_spec(self.path / SPEC_FILE)

    def has_spec(self) -> bool:
        return (self.path / SPEC_FILE).is_file()

    def spec_text(self) -> str:
        return _read_text(self.path / SPEC_FILE)

    def write_spec(self, spec: Spec) -> None:
        header = "# The spec exactly as this run used it (CLI overrides applied, names resolved).\n"
        atomic_write_text(self.path / SPEC_FILE, header + spec_yaml(spec))

    # -- metrics ----------------------------------------------------------------------------
    def read_metrics(self, *, keep_until: int | None = None) -> list[dict[str, Any]]:
        """Every record of ``metrics.jsonl``, validated (``convspec.run_metrics``; a torn
        last line is dropped; with ``keep_until``, a resumed checkpoint's iteration, so is
        every record after it); ``RunDirectoryError`` when there is none."""
        path = self.path / METRICS_JSONL
        if not path.is_file():
            raise RunDirectoryError(f"No training metrics at {path}: expected a run directory "
                                    f"containing {METRICS_JSONL}.")
        return read_metrics_file(path, keep_until=keep_until)

    def metrics_log(self, *, keep_until: int | None = None) -> MetricsLog:
        """The metrics log to append to, with the records logged so far; when resuming
        (``keep_until``: the checkpoint's iteration), whatever follows that iteration (records,
        a torn or unreadable tail) is dropped from both files."""
        jsonl = self.path / METRICS_JSONL
        records = read_metrics_file(jsonl, keep_until=keep_until) if jsonl.is_file() else []
        return MetricsLog(jsonl, self.path / METRICS_CSV, records)

    # -- checkpoint and weights -------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT_FILE).is_file()

    def save_checkpoint(self, spec: Spec, ckpt: Checkpoint) -> Path:
        """Write the full training state as one safetensors file, replaced atomically."""
        from safetensors.numpy import save_file

        check_weights(spec, ckpt.weights)
        arrays, meta = checkpoint.encode(ckpt, architecture_metadata(spec))
        meta = with_checksum(arrays, meta)
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
        """``final.json``, atomically; NaN or infinite numbers are written as null."""
        atomic_write_text(self.path / FINAL_FILE, dumps(final, indent=2, sort_keys=True)
                          + "\n")

    def read_final(self) -> dict[str, Any]:
        """``final.json``, its fields checked (``RunDirectoryError`` naming the file), or an
        empty dict for a run that has not finished."""
        path = self.path / FINAL_FILE
        if not path.is_file():
            return {}
        try:
            final = json.loads(_read_text(path))
        except ValueError as exc:
            raise RunDirectoryError(f"{path}: not valid JSON ({exc})") from None
        problem = final_problem(final)
        if problem is not None:
            raise RunDirectoryError(f"{path}: {problem}")
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
    """A checkpoint file's training state: intact (its content checksum, when it has one),
    every field valid (``checkpoint.decode``) and made for ``spec`` (``WeightsError``)."""
    arrays, meta = read_safetensors(path, "checkpoint", "cannot resume from this checkpoint")
    try:
        ckpt = checkpoint.decode(arrays, meta)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise WeightsError(f"{path}: cannot resume from this checkpoint ({exc})") from None
    check_architecture(meta, spec, str(path), "the checkpoint")
    check_weights(spec, ckpt.weights, str(path))
    check_values(ckpt.weights, str(path))
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
