"""Training curves: training and validation loss, training and validation accuracy, and the
learning rate when a schedule changed it, against iteration.

Needs only the metrics (a run's ``metrics.jsonl``): no weights, no data, no framework.
"""

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


_OPTIONAL = ("val_loss", "val_accuracy", "lr")  # absent from some records (or older runs)


def _column(records: list[dict[str, Any]], key: str, origin: str) -> np.ndarray:
    """One metric as floats; NaN where a record lacks it (allowed only for ``_OPTIONAL``)."""
    values = [r.get(key) for r in records]
    for i, v in enumerate(values):
        missing = v is None and key not in _OPTIONAL
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
    """Loss (training: each record's window mean; validation: where measured) and accuracy (%)
    against iteration, from a run directory, a ``metrics.jsonl`` path or a list of records;
    a third panel shows the learning rate when it changed during the run."""
    records, origin = _load_records(source)
    if not records:
        raise ConvspecError(f"{origin} holds no training records, so there is nothing to plot.")
    it = _column(records, "iteration", origin)
    loss, val_loss = _column(records, "loss", origin), _column(records, "val_loss", origin)
    train, val = _percent(
        _column(records, "train_accuracy", origin), _column(records, "val_accuracy", origin)
    )
    lr = _column(records, "lr", origin)
    scheduled = len(set(lr[~np.isnan(lr)])) > 1
    fig = new_figure((8.0, 8.0 if scheduled else 6.0), show)
    axes = fig.subplots(3 if scheduled else 2, 1, sharex=True,
                        height_ratios=[3, 3, 1.6] if scheduled else None)
    ax_loss, ax_acc = axes[0], axes[1]
    marker = "." if len(it) < 50 else None  # a lone point must still show
    ax_loss.set_title("Training curves")
    for ax, (ys, val_ys, label) in ((ax_loss, (loss, val_loss, "Loss")),
                                   (ax_acc, (train, val, "Accuracy (%)"))):
        ax.plot(it, ys, label="training", color="tab:blue", marker=marker)
        has_val = ~np.isnan(val_ys)
        if has_val.any():
            ax.plot(it[has_val], val_ys[has_val], label="validation", color="tab:orange",
                    marker="o", markersize=3)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_loss.legend(loc="upper right")
    ax_acc.legend(loc="lower right")
    if scheduled:
        known = ~np.isnan(lr)
        axes[2].plot(it[known], lr[known], color="tab:gray")
        axes[2].set_ylabel("Learning rate")
        axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        axes[2].grid(alpha=0.3)
    axes[-1].set_xlabel("Iteration")
    return finish(fig, path, show)
