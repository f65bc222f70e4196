"""The training progress bar of ``convspec train``: a rich bar on stderr, log lines above it.

The library reports progress through ``convspec.train.ProgressReporter``; this is the CLI's
display of it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..train import ProgressFactory


class ProgressBar:
    """A transient bar (description, bar, steps done / total, time left) that log lines print
    above. ``console`` defaults to a rich Console on stderr."""

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
        self.progress = Progress(TextColumn("[progress.description]{task.description}"),
                                 BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=console or Console(stderr=True), transient=True)
        self.task = self.progress.add_task("training", total=total, completed=done)
        self.progress.start()

    def update(self, steps: int) -> None:
        self.progress.advance(self.task, steps)

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
