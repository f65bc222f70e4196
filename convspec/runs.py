"""The run directory: everything a training run leaves behind, written safely.

``runs/<spec-name>-<timestamp>/`` holds the spec as used (``spec.yaml``), the resolved
configuration (``config.json``), metrics (``metrics.jsonl`` and ``metrics.csv``), final metrics
(``final.json``), the canonical weights (``weights.safetensors``) and the latest checkpoint
(``checkpoint.safetensors``: weights, optimizer state, sampler state and iteration in one
file, replaced atomically so an interruption never leaves a half checkpoint).
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .architecture import architecture_metadata, check_architecture
from .errors import WeightsError
from .specification import Spec, load_spec
from .weights import check_weights, load_weights, read_weights

SPEC_FILE = "spec.yaml"
CONFIG_FILE = "config.json"
METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
FINAL_FILE = "final.json"
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "convspec-checkpoint/1"
METRIC_FIELDS = ("iteration", "loss", "train_accuracy", "val_accuracy", "elapsed")


def new_run_dir(spec: Spec, root: str | os.PathLike[str] = "runs") -> Path:
    """A fresh ``<root>/<name>-<YYYYmmdd-HHMMSS>`` directory (suffixed if taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{spec.name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_spec(run_dir: Path, spec: Spec) -> None:
    header = "# The spec exactly as this run used it (CLI overrides applied, names resolved).\n"
    body = yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=None)
    atomic_write_text(run_dir / SPEC_FILE, header + body)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{path}: missing; is {path.parent} a convspec run directory?") from None
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: unreadable ({exc})") from None


class MetricsLog:
    """Appends one record per logged step to metrics.jsonl and metrics.csv."""

    def __init__(self, run_dir: Path, *, keep_until: int | None = None):
        self.jsonl = run_dir / METRICS_JSONL
        self.csv = run_dir / METRICS_CSV
        records = read_metrics(run_dir) if self.jsonl.exists() else []
        if keep_until is not None:  # resuming: forget what was logged after the checkpoint
            records = [r for r in records if r["iteration"] <= keep_until]
        self.records: list[dict[str, Any]] = records
        self._rewrite()

    def _rewrite(self) -> None:
        atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in self.records))
        with open(self.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.records)

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with open(self.jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        with open(self.csv, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=METRIC_FIELDS, extrasaction="ignore").writerow(record)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS_JSONL
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                raise WeightsError(f"{path}:{n}: not a JSON record") from None
    return records


@dataclass
class Checkpoint:
    iteration: int
    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    sampler: dict[str, Any]
    elapsed: float


def save_checkpoint(run_dir: Path, spec: Spec, ckpt: Checkpoint) -> Path:
    """One safetensors file holding the full training state; replaced atomically."""
    from safetensors.numpy import save_file

    check_weights(spec, ckpt.weights)
    # np.array(..., order="C") keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d)
    arrays = {f"weights/{k}": np.array(v, order="C") for k, v in ckpt.weights.items()}
    arrays |= {f"optimizer/{k}": np.array(v, order="C") for k, v in ckpt.optimizer.items()}
    arrays["sampler/order"] = np.ascontiguousarray(ckpt.sampler["order"], dtype=np.int64)
    meta = {
        "format": CHECKPOINT_FORMAT,
        **architecture_metadata(spec),
        "iteration": str(ckpt.iteration),
        "elapsed": repr(ckpt.elapsed),
        "sampler": json.dumps({k: v for k, v in ckpt.sampler.items() if k != "order"}),
    }
    path = run_dir / CHECKPOINT_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(arrays, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: Path, spec: Spec) -> Checkpoint:
    from safetensors import safe_open

    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise WeightsError(f"{run_dir}: no checkpoint to resume from ({CHECKPOINT_FILE} missing)")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a convspec checkpoint")
        sampler = json.loads(meta["sampler"])
        sampler["order"] = arrays.pop("sampler/order")
        ckpt = Checkpoint(
            iteration=int(meta["iteration"]),
            weights={k[8:]: v for k, v in arrays.items() if k.startswith("weights/")},
            optimizer={k[10:]: v for k, v in arrays.items() if k.startswith("optimizer/")},
            sampler=sampler,
            elapsed=float(meta.get("elapsed", "0")),
        )
    except Exception as exc:
        raise WeightsError(f"{path}: cannot resume from this checkpoint ({exc})") from None
    check_architecture(meta, spec, str(path), "the checkpoint")
    check_weights(spec, ckpt.weights, str(path))
    return ckpt


def load_run_spec(run_dir: Path) -> Spec:
    return load_spec(Path(run_dir) / SPEC_FILE)


def resolve_weights(source: str | os.PathLike[str], spec: Spec) -> dict[str, np.ndarray]:
    """Weights from a run directory (final weights, else its checkpoint) or a weights file."""
    path = Path(source)
    if path.is_dir():
        if (path / WEIGHTS_FILE).is_file():
            return load_weights(path / WEIGHTS_FILE, spec)
        if (path / CHECKPOINT_FILE).is_file():
            return load_checkpoint(path, spec).weights
        raise WeightsError(f"{path}: no {WEIGHTS_FILE} or {CHECKPOINT_FILE} in this directory")
    if path.suffix == ".safetensors" and path.is_file():
        arrays, meta = read_weights(path)
        if meta.get("format") == CHECKPOINT_FORMAT:
            return load_checkpoint(path.parent, spec).weights
    return load_weights(path, spec)
