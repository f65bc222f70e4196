"""Your own data through the command line: train --data, validate --data, and evaluate /
plot / report / predict / --resume following the run's data, with a NumPy backend (no
framework needed) on small synthetic image trees.

Covers: convspec.cli, convspec.run_data, convspec.data (the --data option across the commands).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from own_data import grey, write_idx, write_tree
from test_train_run import NumpyBackend

from convspec import backends
from convspec.cli import main
from convspec.run_directory import RunDirectory

SPEC = """name: tiny
input: {height: 8, width: 6, channels: 1}
classes: 3
layers: [{kind: flatten}, {kind: dense, units: 3}]
train:
  dataset: {kind: folder, path: tree, validation_split: 0.2}
  batch_size: 8
  iterations: 12
  log_every: 4
  validate_every: 6
"""


@pytest.fixture
def project(monkeypatch, tmp_path):
    """A spec next to its data (a relative path), trained by the NumPy backend."""
    monkeypatch.setitem(backends.BUILTIN, NumpyBackend.name, "test_train_run:NumpyBackend")
    x, y = grey(40, classes=3)
    write_tree(tmp_path / "tree" / "train", x, y, names=["ant", "bee", "cat"])
    write_tree(tmp_path / "tree" / "test", x[:9], y[:9], names=["ant", "bee", "cat"])
    (tmp_path / "tiny.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path / "tree")  # the spec's paths do not depend on where we are
    return tmp_path


def _train(project, *args):
    out = project / "run"
    code = main(["train", str(project / "tiny.yaml"), "--backend", NumpyBackend.name,
                 "--out", str(out), "--no-progress", *args])
    return code, out


def test_train_records_the_data_and_evaluate_follows_it(project, capsys):
    code, out = _train(project)
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"(from folder {project / 'tree'} (test/, train/))" in text
    assert "Decoding 40 images" in text and "- Test-set:\t\t9" in text
    run = RunDirectory.open(out)
    record = run.config.data_record()
    assert record.class_names == ("ant", "bee", "cat")
    assert record.source["path"] == str(project / "tree")
    assert record.raw["split"] == {"seed": 0, "validation": 0.2, "test": "given"}
    assert f"path: {project / 'tree'}" in (out / "spec.yaml").read_text()
    assert main(["evaluate", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Data: folder {project / 'tree'} (test/, train/); test set: 9 "
                           "images\nAccuracy on Test-Set:")
    assert "  1 bee " in text
    assert main(["evaluate", str(project / "tiny.yaml"), "--weights", str(out), "--json",
                 "--split", "validation"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["total"] == 8 and result["data"]["class_names"] == ["ant", "bee", "cat"]


def test_plot_report_and_resume_use_the_run_data(project, capsys):
    code, out = _train(project)
    assert code == 0
    capsys.readouterr()
    assert main(["plot", str(out), "--what", "confusion", "--what", "errors"]) == 0
    assert f"Data: folder {project / 'tree'}" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "<td>bee</td>" in page and "x = pixel / 255" in page
    assert main(["train", "--resume", str(out), "--iterations", "16", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Resuming" in text and f"(from folder {project / 'tree'}" in text
    assert RunDirectory.open(out).read_final()["test"]["total"] == 9


def test_predict_run_dir_on_folders_as_csv_and_json(project, capsys):
    code, out = _train(project)
    capsys.readouterr()
    csv_out = project / "predictions.csv"
    assert main(["predict", str(out), str(project / "tree" / "test" / "bee"),
                 "--format", "csv", "--out", str(csv_out)]) == 0
    lines = csv_out.read_text().splitlines()
    assert lines[0] == "path,class,name,probability,p(ant),p(bee),p(cat)"
    assert len(lines) == 1 + len(list((project / "tree" / "test" / "bee").glob("*.png")))
    row = lines[1].split(",")
    assert row[2] in ("ant", "bee", "cat") and abs(sum(map(float, row[4:])) - 1) < 1e-5
    assert main(["predict", str(out), str(project / "tree" / "test"), "--format", "json",
                 "--top", "2"]) == 0
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    assert len(records) == 9 and len(records[0]["top"]) == 2
    assert records[0]["name"] == ["ant", "bee", "cat"][records[0]["class"]]
    assert "Reading 9 image(s) as 8x6 grey, transparency over black" in captured.err


def test_the_canvas_png_gives_the_plain_answer(tmp_path, capsys):
    """The shared case: ink in the alpha channel only, over a transparent ground."""
    from test_decoder import CASES

    from convspec.specification import load_spec
    from convspec.weights import init_weights, save_weights

    pytest.importorskip("torch")
    spec = load_spec(ROOT / "specs" / "mnist.yaml")
    weights = tmp_path / "w.safetensors"
    save_weights(weights, init_weights(spec, seed=3), spec)
    assert main(["predict", str(ROOT / "specs" / "mnist.yaml"), "--weights", str(weights),
                 str(CASES / "predict-canvas-rgba.png"), str(CASES / "predict-plain.png"),
                 "--format", "json"]) == 0
    captured = capsys.readouterr()
    canvas, plain = json.loads(captured.out)
    assert canvas["class"] == plain["class"]  # the same input (test_decoder checks the pixels)
    assert canvas["probabilities"] == pytest.approx(plain["probabilities"], rel=1e-5)
    assert "keeps its picture in the alpha channel only" in captured.err


def test_validate_checks_the_data_without_reading_it(project, capsys, tmp_path):
    spec = str(project / "tiny.yaml")
    assert main(["validate", spec]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1] == (f"  data: folder {project / 'tree'} (test/, train/): train "
                                   "40, test 9 images; 3 classes (ant, bee, cat): fits the spec")
    x, y = grey(6, classes=4, size=(9, 6))
    write_idx(tmp_path / "other", (x, y), (x, y))
    assert main(["validate", spec, "--data", str(tmp_path / "other")]) == 1
    err = capsys.readouterr().err
    assert "the spec is valid, but its data does not fit: spec 'tiny' takes 8x6x1 images" in err
    assert "IDX files" in err and "has 9x6x1 images" in err
    assert main(["validate", spec, "--data", str(tmp_path / "nothing")]) == 2


def test_a_spec_that_does_not_fit_is_refused_before_anything_runs(tmp_path):
    """32x32x3 with dataset: mnist: refused before any data is read, any framework imported
    or any run directory made."""
    bad = tmp_path / "rgb.yaml"
    bad.write_text((ROOT / "specs" / "mnist.yaml").read_text().replace(
        "input: {height: 28, width: 28, channels: 1}", "input: {height: 32, width: 32, "
        "channels: 3}"))
    code = ("import sys, convspec.data.loader as l\n"
            "l.load_dataset = lambda *a, **k: sys.exit('the data was read')\n"
            "from convspec.cli import main\n"
            f"code = main(['train', {str(bad)!r}, '--iterations', '1'])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', "
            "'tensorflow'))\n"
            "print(code, heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.stdout.strip().splitlines()[-1] == "1 []", result.stderr
    assert "spec 'mnist' takes 32x32x3 images" in result.stderr
    assert "but MNIST has 28x28x1 images" in result.stderr
    assert not (tmp_path / "runs").exists()
    assert main(["validate", str(bad)]) == 1


def test_evaluate_spec_weights_uses_the_runs_data_folder(monkeypatch, tmp_path, capsys):
    """A run trained with --data-dir is evaluated on that folder's test set, not on the
    offline sample (the old behaviour)."""
    monkeypatch.setitem(backends.BUILTIN, NumpyBackend.name, "test_train_run:NumpyBackend")
    spec = tmp_path / "linear.yaml"
    spec.write_text("name: linear\ninput: {height: 28, width: 28, channels: 1}\nclasses: 10\n"
                    "layers: [{kind: flatten}, {kind: dense, units: 10}]\n"
                    "train: {dataset: mnist, batch_size: 8, iterations: 3, validation_size: 10}\n")
    x, y = grey(40, classes=10, size=(28, 28))
    folder = write_idx(tmp_path / "mnist-files", (x, y), (x[:7], y[:7]))
    out = tmp_path / "run"
    assert main(["train", str(spec), "--backend", NumpyBackend.name, "--data-dir", str(folder),
                 "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(spec), "--weights", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 7
    assert main(["evaluate", str(out)]) == 0
    assert f"Data: {folder}; test set: 7 images" in capsys.readouterr().out
    np.testing.assert_array_equal(RunDirectory.open(out).config.data_record().class_names,
                                  [str(i) for i in range(10)])


def test_other_data_on_the_command_line(project, capsys, tmp_path):
    code, out = _train(project)
    assert code == 0
    moved = tmp_path / "moved"
    (project / "tree").rename(moved)  # the data moved: tell evaluate and --resume where
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(out), "--data", str(moved), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 9
    assert main(["train", "--resume", str(out), "--iterations", "14", "--data", str(moved),
                 "--no-progress"]) == 0
    assert f"(from folder {moved} (test/, train/))" in capsys.readouterr().out
    assert f"path: {moved}" in (out / "spec.yaml").read_text()  # the run now records it
    assert main(["evaluate", str(out)]) == 0
    assert main(["predict", str(out), str(moved / "test"), "--background", "red"]) == 2
    assert "black, white or #rrggbb" in capsys.readouterr().err
    assert main(["evaluate", str(out), "--data", str(moved), "--dataset", "mnist"]) == 2


def test_normalisation_is_recorded_and_predict_agrees_with_evaluate(project, capsys):
    spec = project / "tiny.yaml"
    spec.write_text(SPEC + "  normalize: {kind: per_channel}\n")
    code, out = _train(project)
    assert code == 0
    pre = RunDirectory.open(out).config.data_record().preprocessing
    assert pre["scale"] == "1/255" and len(pre["mean"]) == 1 and pre["std"][0] > 0
    assert "Preprocessing: x = (pixel / 255 - mean) / std per channel" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert main(["predict", str(out), str(project / "tree" / "test"), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)  # the test folder in the test set's order
    truth = [["ant", "bee", "cat"].index(r["path"].split("/")[-2]) for r in records]
    wrong = [i for i, (r, t) in enumerate(zip(records, truth)) if r["class"] != t]
    assert wrong == result["misclassified"]
    assert main(["predict", str(spec), str(project / "tree" / "test"), "--weights",
                 str(out / "weights.safetensors")]) == 0  # the run, found from its weights
    capsys.readouterr()
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["export", str(out), "--format", "onnx"]) == 0
    assert "input: NHWC float32, x = (pixel / 255 - mean) / std per channel" in \
        capsys.readouterr().out
    import onnx

    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert json.loads(props["convspec.class_names"]) == ["ant", "bee", "cat"]
    assert json.loads(props["convspec.preprocessing"])["mean"] == pre["mean"]


def test_validate_with_data_imports_no_numpy_or_framework(project, tmp_path):
    x, y = grey(6, classes=3)
    write_idx(tmp_path / "idx", (x, y), (x, y))
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    spec = str(project / "tiny.yaml")
    code = ("import sys; from convspec.cli import main\n"
            f"codes = [main(['validate', {spec!r}]), main(['validate', {spec!r}, '--data', "
            f"{str(tmp_path / 'idx')!r}]), main(['validate', {spec!r}, '--data', "
            f"{str(tmp_path / 'd.npz')!r}])]\n"
            "print(codes, sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'torch', "
            "'tensorflow'}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[0, 0, 0] []", result.stderr
