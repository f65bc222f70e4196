"""Training curves: loss and train / validation accuracy against iteration."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import ConvspecError
from .figure import PathArg, finish, new_figure


def _load_records(source: Any) -> tuple[list[dict[str, Any]], str]:
    """Records from a run dir, a metrics.jsonl path, or a list of dicts, plus their origin."""
    if isinstance(source, str | os.PathLike):
        from ..run_directory import METRICS_JSONL, RunDirectory, read_metrics_file

        path = Path(source)
        if path.is_dir():
            return RunDirectory(path).read_metrics(), str(path / METRICS_JSONL)
        if not path.is_file():
            raise ConvspecError(
                f"No training metrics at {path}: expected a run directory containing "
                f"{METRICS_JSONL} or the path of a {METRICS_JSONL} file."
            )
        return read_metrics_file(path), str(path)
    if isinstance(source, Iterable) and not isinstance(source, Mapping):
        records = list(source)
        if all(isinstance(r, Mapping) for r in records):
            return records, "the given records"
    raise ConvspecError(
        f"Cannot read training metrics from a {type(source).__name__}: pass a run directory, "
        "a metrics.jsonl path, or a list of dict records."
    )


def _column(records: list[dict[str, Any]], key: str, origin: str) -> np.ndarray:
    """One metric as floats; NaN where a record lacks it (allowed only for val_accuracy)."""
    values = [r.get(key) for r in records]
    for i, v in enumerate(values):
        missing = v is None and key != "val_accuracy"
        if missing or not (v is None or isinstance(v, int | float)):
            problem = f"has no {key!r}" if missing else f"has a non-numeric {key!r}"
            raise ConvspecError(f"{origin}: record {i + 1} {problem}: {records[i]}.")
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _percent(train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracies are logged as fractions; if any exceeds 1 they were already percent."""
    both = np.concatenate([train, val])
    scale = 1.0 if np.nanmax(both, initial=0.0) > 1.0 else 100.0
    return train * scale, val * scale


def plot_training_curves(source: Any, *, path: PathArg = None, show: bool = False) -> Figure:
    """Loss and train/validation accuracy (%) against iteration, from a run's metrics.jsonl."""
    records, origin = _load_records(source)
    if not records:
        raise ConvspecError(f"{origin} holds no training records, so there is nothing to plot.")
    it = _column(records, "iteration", origin)
    loss = _column(records, "loss", origin)
    train, val = _percent(
        _column(records, "train_accuracy", origin), _column(records, "val_accuracy", origin)
    )
    fig = new_figure((8.0, 6.0), show)
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)
    marker = "." if len(it) < 50 else None  # a lone point must still show
    ax_loss.plot(it, loss, color="tab:blue", marker=marker)
    ax_loss.set_ylabel("Loss")
    ax_loss.set_title("Training curves")
    ax_acc.plot(it, train, label="training", color="tab:orange", marker=marker)
    has_val = ~np.isnan(val)
    if has_val.any():
        ax_acc.plot(
            it[has_val],
            val[has_val],
            label="validation",
            color="tab:green",
            marker="o",
            markersize=3,
        )
    ax_acc.set_xlabel("Iteration")
    ax_acc.set_ylabel("Accuracy (%)")
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    return finish(fig, path, show)
