"""convspec.train.run: the order of work of one ``convspec train``, through the CLI, with a
NumPy backend that has no parallel hooks (so no framework is needed)."""

from __future__ import annotations

import json

import pytest
from conftest import LINEAR, tiny_dataset
from test_train import NumpyLinear

import convspec.train.run
from convspec import backends
from convspec.cli import main
from convspec.run_config import RunConfig
from convspec.run_directory import CHECKPOINT_FILE, RunDirectory

FILES = {"spec.yaml", "config.json", "metrics.jsonl", "metrics.csv", "final.json",
         "best.safetensors", "weights.safetensors", "checkpoint.safetensors"}


def _files(folder) -> set[str]:
    """The names in a run directory, its one TensorBoard event file as ``events``."""
    names = {p.name for p in folder.iterdir()}
    events = {n for n in names if n.startswith("events.out.tfevents.")}
    assert len(events) == 1, names
    return (names - events) | {"events"}


class NumpyBackend:
    """A third-party backend with only ``compile``: it trains on a single process."""

    name = "numpy-linear"
    framework = "NumPy"
    module = "numpy"
    extra = "numpy"

    def compile(self, spec, *, weights=None, device="cpu"):
        model = NumpyLinear(spec)
        if weights is not None:
            model.set_weights(weights)
        return model


@pytest.fixture
def linear(monkeypatch, tmp_path):
    """The LINEAR spec as a file, trained by NumpyBackend on the tiny synthetic dataset."""
    monkeypatch.setitem(backends.BUILTIN, NumpyBackend.name, f"{__name__}:NumpyBackend")
    monkeypatch.setattr(convspec.train.run, "load_data", lambda *a, **k: tiny_dataset())
    path = tmp_path / "linear.yaml"
    path.write_text(LINEAR)
    return path


def _train(*args: str) -> int:
    return main(["train", *args, "--backend", NumpyBackend.name, "--no-progress"])


def test_a_backend_without_parallel_hooks_trains_on_one_process(linear, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out)) == 0
    assert _files(out) == FILES | {"events"}
    run = RunDirectory.open(out)
    assert run.config.backend == NumpyBackend.name
    assert run.config.record["parallel"] == {"processes": 1, "devices_per_process": 1,
                                             "launcher": "none"}
    assert run.read_final()["iterations"] == 12
    assert "Optimization Iteration:" in capsys.readouterr().out


def test_nproc_with_a_backend_without_parallel_hooks_is_refused(linear, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out), "--nproc", "2") == 2
    err = capsys.readouterr().err
    assert "trains on a single process (it has no parallel_layout hook)" in err
    assert "Traceback" not in err and not out.exists()


def test_a_spec_that_does_not_fit_the_data_leaves_no_run_directory(linear, tmp_path, capsys,
                                                                   monkeypatch):
    wide = tmp_path / "wide.yaml"
    wide.write_text(LINEAR.replace("height: 28", "height: 32"))
    out = tmp_path / "run"
    assert _train(str(wide), "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "takes 32x28x1 images" in err and "Traceback" not in err
    assert not out.exists()
    monkeypatch.chdir(tmp_path)
    assert _train(str(wide)) == 1
    assert not (tmp_path / "runs").exists()
    assert _train(str(linear), "--out", str(out)) == 0  # the same --out, once the spec fits


def test_a_failed_resume_rewrites_nothing(linear, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out)) == 0
    before = {name: (out / name).read_bytes() for name in FILES}
    good = before[CHECKPOINT_FILE]
    (out / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert _train("--resume", str(out), "--iterations", "20") == 1
    assert "cannot resume from this checkpoint" in capsys.readouterr().err
    for name in FILES - {CHECKPOINT_FILE}:
        assert (out / name).read_bytes() == before[name], name
    (out / CHECKPOINT_FILE).write_bytes(good)
    assert _train("--resume", str(out), "--iterations", "20") == 0
    assert "iterations: 20" in (out / "spec.yaml").read_text()
    assert RunDirectory(out).read_final()["iterations"] == 20


def test_resume_reads_config_json_once(linear, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out)) == 0
    reads = []
    real = RunConfig.from_json.__func__

    def counting(cls, text, source):
        reads.append(source)
        return real(cls, text, source)

    monkeypatch.setattr(RunConfig, "from_json", classmethod(counting))
    assert main(["train", "--resume", str(out), "--iterations", "15", "--no-progress"]) == 0
    assert reads == [str(out / "config.json")]
    assert json.loads((out / "final.json").read_text())["backend"] == NumpyBackend.name


@pytest.mark.parametrize(("text", "message"), [
    ("[]", "config.json: expected a JSON object describing the run, got a list"),
    ('{"backend": "torch"}', "config.json: missing field 'device'"),
])
def test_a_bad_config_json_on_resume_is_one_line(linear, tmp_path, capsys, text, message):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out)) == 0
    (out / "config.json").write_text(text)
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_spec_given_with_resume_must_be_the_runs_own(linear, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out)) == 0
    spec_yaml = (out / "spec.yaml").read_text()
    capsys.readouterr()
    # the same network and training settings, written differently: a note, then it resumes
    same = tmp_path / "same.yaml"
    same.write_text(linear.read_text().replace("name: linear", "name: renamed")
                    .replace("- {kind: flatten}", "- {kind: flatten, name: flat}"))
    assert _train(str(same), "--resume", str(out), "--iterations", "15") == 0
    printed = capsys.readouterr().out
    assert f"Note: {same} is the spec of {out} (same network and training settings); " \
           "resuming with the run's own spec.yaml" in printed
    assert RunDirectory(out).read_final()["iterations"] == 15
    # another network, or other training settings: refused in one line, nothing changed
    for change, difference in (
            (("units: 10", "units: 10, bias: false"),
             "layer 1 (fc1) bias is false in SPEC, true in the run's spec.yaml"),
            (("batch_size: 8", "batch_size: 16"),
             "train.batch_size is 16 in SPEC, 8 in the run's spec.yaml"),
            (("iterations: 12", "iterations: 30"),
             "train.iterations is 30 in SPEC, 15 in the run's spec.yaml")):
        other = tmp_path / "other.yaml"
        other.write_text(linear.read_text().replace(*change))
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        assert _train(str(other), "--resume", str(out)) == 2
        err = capsys.readouterr().err
        assert f"error: {other} is not the spec of the run {out}: {difference}. --resume " \
               "continues a run with its own spec.yaml; drop SPEC to resume it" in err
        assert f"or drop --resume to start a new run from {other}" in err
        assert len(err.strip().splitlines()) == 1
        assert ("use --resume with --iterations N" in err) == ("iterations" in difference)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert "iterations: 15" in (out / "spec.yaml").read_text() != spec_yaml


def test_no_test_images_is_said_and_written_as_null(linear, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(convspec.train.run, "load_data",
                        lambda *a, **k: tiny_dataset(n_test=0, n_val=0))
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out)) == 0
    assert "Accuracy on Test-Set: no test images" in capsys.readouterr().out
    text = (out / "final.json").read_text()
    final = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in final.json"))
    assert final["test"]["accuracy"] is None and final["test"]["total"] == 0
    assert final["val_accuracy"] is None
    for line in (out / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in metrics"))
    monkeypatch.setattr("convspec.run_data.run_data", lambda *a, **k: tiny_dataset(n_test=0))
    assert main(["evaluate", str(out), "--backend", NumpyBackend.name]) == 1
    err = capsys.readouterr().err
    assert "the test set of synthetic has no images; there is nothing to evaluate" in err
