"""convspec.cli.progress: the training bar, and log lines printed above it."""

from __future__ import annotations

import io

from convspec.cli.progress import ProgressBar, progress_display


def test_log_lines_print_above_the_bar_without_markup_leaking():
    from rich.console import Console

    out = io.StringIO()
    bar = ProgressBar(10, 2, console=Console(file=out, force_terminal=True, width=100))
    for i in range(3):
        bar.update(1)
        bar.log(f"Optimization Iteration: {i} [not markup]")
    bar.close()
    text = out.getvalue()
    assert "Optimization Iteration: 2 [not markup]" in text
    assert "training" in text and "5/10" in text
    assert "[progress.description]" not in text  # the column's own markup is rendered


def test_the_bar_is_shown_on_a_terminal_or_when_asked(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_display(True) is ProgressBar
    assert progress_display(False) is None
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert progress_display(None) is None
    monkeypatch.setattr("sys.stderr", Terminal())
    assert progress_display(None) is ProgressBar
