"""The training progress bar of ``convspec train``: a rich bar on stderr, log lines above it.

The library reports progress through ``convspec.train.ProgressReporter``; this is the CLI's
display of it. ``rich`` is a dependency of convspec itself, so every install has it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..train import ProgressFactory


def format_metrics(record: Mapping[str, Any]) -> str:
    """``loss 0.2345  acc 93.8%  lr 1.0e-04`` (the training window's means), with
    ``val_loss`` / ``val_acc`` when the record has a validation."""
    parts = [f"loss {record['loss']:.4f}", f"acc {record['train_accuracy']:.1%}",
             f"lr {record['lr']:.1e}"]
    if record.get("val_loss") is not None:
        parts += [f"val_loss {record['val_loss']:.4f}", f"val_acc {record['val_accuracy']:.1%}"]
    return "  ".join(parts)


class ProgressBar:
    """A transient bar (description, bar, steps done / total, the latest training loss,
    accuracy and learning rate, time left) that log lines print above. ``console`` defaults to
    a rich Console on stderr."""

    def __init__(self, total: int, done: int, console: Any = None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        # A TextColumn renders its own markup. A plain string column is rendered with the
        # options of whatever is printed next, and log lines print with markup=False, so the
        # bar would redraw showing the literal "[progress.description]".
        # The metrics are plain text (markup=False): a value is never read as markup.
        self.progress = Progress(TextColumn("[progress.description]{task.description}"),
                                 BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[metrics]}", markup=False),
                                 TimeRemainingColumn(),
                                 console=console or Console(stderr=True), transient=True)
        self.task = self.progress.add_task("training", total=total, completed=done,
                                           metrics="")
        self.validation: dict[str, Any] = {}
        self.progress.start()

    def update(self, steps: int) -> None:
        self.progress.advance(self.task, steps)

    def metrics(self, record: Mapping[str, Any]) -> None:
        """Show the record's figures, and the latest validation's until the next one."""
        if record.get("val_loss") is not None:
            self.validation = {k: record[k] for k in ("val_loss", "val_accuracy")}
        self.progress.update(self.task, metrics=format_metrics({**record, **self.validation}))

    def log(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


def progress_display(show: bool | None) -> ProgressFactory | None:
    """The bar when ``show`` (``--progress``), none when not; by default only when stderr is a
    terminal."""
    if show is None:
        show = sys.stderr.isatty()
    return ProgressBar if show else None
