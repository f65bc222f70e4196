"""convspec.run_directory / run_config: creating, opening and resuming a run's files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convspec.errors import RunDirectoryError, UsageError, WeightsError
from convspec.run_config import RunConfig
from convspec.run_directory import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    SPEC_FILE,
    WEIGHTS_FILE,
    Checkpoint,
    RunDirectory,
    read_metrics_file,
    resolve_weights,
)
from convspec.specification import loads_spec
from convspec.weights import init_weights

LINEAR = """
name: linear
input: {height: 4, width: 4, channels: 1}
classes: 3
layers:
  - {kind: flatten}
  - {kind: dense, units: 3}
train: {batch_size: 2, iterations: 5}
"""
OTHER = LINEAR.replace("units: 3}", "units: 4}\n  - {kind: dense, units: 3}")
CONFIG = RunConfig(backend="torch", device="cpu", dataset="mnist", data_dir=None,
                   record={"overrides": {"iterations": 5}, "command": ["convspec", "train"]})


def _checkpoint(spec, iteration: int = 3) -> Checkpoint:
    return Checkpoint(iteration, init_weights(spec, 0), {"step": np.array(iteration)},
                      {"order": np.arange(6), "pos": 2, "epoch": 0, "rng": {"x": 1}}, 1.5)


def _no_temporaries(folder) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_create_then_open_round_trips_spec_and_config(tmp_path):
    spec = loads_spec(LINEAR)
    run = RunDirectory.create(spec, CONFIG, out=tmp_path / "run")
    assert sorted(p.name for p in run.path.iterdir()) == [CONFIG_FILE, SPEC_FILE]
    opened = RunDirectory.open(tmp_path / "run")
    assert opened.config == CONFIG
    assert opened.load_spec().to_dict() == spec.to_dict()
    assert opened.spec_text().startswith("# The spec exactly as this run used it")
    written = json.loads((run.path / CONFIG_FILE).read_text())
    assert written["backend"] == "torch" and written["overrides"] == {"iterations": 5}
    _no_temporaries(run.path)


def test_a_config_of_an_older_run_opens_with_defaults(tmp_path):
    old = {"backend": "tensorflow", "device": "cpu", "dataset": "mnist", "data_dir": "/data",
           "data_source": "/data", "is_sample": False, "sizes": {"train": 55000}}
    (tmp_path / CONFIG_FILE).write_text(json.dumps(old))
    config = RunDirectory.open(tmp_path).config
    assert (config.backend, config.precision, config.compiled) == ("tensorflow", "fp32", False)
    assert config.data_dir == "/data" and config.record["sizes"] == {"train": 55000}


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "expected a JSON object describing the run, got a list"),
    ('"torch"', "expected a JSON object describing the run, got a string"),
    ("{not json", "not valid JSON"),
    ('{"device": "cpu", "dataset": "mnist", "data_dir": null}', "missing field 'backend'"),
    ('{"backend": "torch", "device": "cpu", "dataset": "mnist"}', "missing field 'data_dir'"),
    ('{"backend": 3, "device": "cpu", "dataset": "mnist", "data_dir": null}',
     "field 'backend' must be a string, got 3"),
    ('{"backend": "torch", "device": "cpu", "dataset": "mnist", "data_dir": null, '
     '"compiled": "yes"}', "field 'compiled' must be true or false, got \"yes\""),
    ('{"backend": "torch", "device": "tpu", "dataset": "mnist", "data_dir": null}',
     "field 'device' must be one of cpu, cuda, auto, got \"tpu\""),
    ('{"backend": "torch", "device": "cpu", "dataset": "mnist", "data_dir": null, '
     '"precision": "fp64"}', "field 'precision' must be one of fp32, bf16, fp16"),
    ('{"backend": " ", "device": "cpu", "dataset": "mnist", "data_dir": null}',
     "field 'backend' must be a string, got \" \""),
])
def test_a_bad_config_is_one_line_naming_the_file(tmp_path, text, message):
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(RunDirectoryError) as info:
        RunDirectory.open(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / CONFIG_FILE}: ")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_folder_without_config_is_not_a_run(tmp_path):
    with pytest.raises(RunDirectoryError, match="config.json: missing; is .* a convspec run"):
        RunDirectory.open(tmp_path)
    with pytest.raises(RunDirectoryError, match="no such run directory"):
        RunDirectory.open(tmp_path / "nope")


def test_out_must_be_empty_and_default_names_never_collide(tmp_path, monkeypatch):
    import time

    spec = loads_spec(LINEAR)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("keep me")
    with pytest.raises(UsageError, match="exists and is not empty"):
        RunDirectory.create(spec, CONFIG, out=tmp_path / "taken")
    assert (tmp_path / "taken" / "x").read_text() == "keep me"
    monkeypatch.setattr(time, "strftime", lambda fmt: "20250101-120000")  # the same second
    first = RunDirectory.create(spec, CONFIG, root=tmp_path / "runs")
    second = RunDirectory.create(spec, CONFIG, root=tmp_path / "runs")
    assert first.path.name == "linear-20250101-120000"
    assert second.path.name == "linear-20250101-120000-2"
    assert (second.path / SPEC_FILE).is_file()


def test_checkpoint_round_trip_and_another_network_is_refused(tmp_path):
    spec = loads_spec(LINEAR)
    run = RunDirectory(tmp_path / "run")
    assert not run.has_checkpoint()
    with pytest.raises(WeightsError, match="no checkpoint to resume from"):
        run.load_checkpoint(spec)
    run.save_checkpoint(spec, _checkpoint(spec))
    ckpt = run.load_checkpoint(spec)
    assert ckpt.iteration == 3 and ckpt.elapsed == 1.5 and ckpt.sampler["pos"] == 2
    np.testing.assert_array_equal(ckpt.sampler["order"], np.arange(6))
    assert ckpt.optimizer["step"].shape == ()  # 0-d stays 0-d
    with pytest.raises(WeightsError, match="was trained for a different network: "):
        run.load_checkpoint(loads_spec(OTHER))
    (run.path / CHECKPOINT_FILE).write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="cannot resume from this checkpoint"):
        run.load_checkpoint(spec)
    _no_temporaries(run.path)


def test_weights_come_from_the_final_file_else_the_checkpoint(tmp_path):
    spec = loads_spec(LINEAR)
    run = RunDirectory(tmp_path)
    with pytest.raises(WeightsError, match=f"no {WEIGHTS_FILE} or {CHECKPOINT_FILE}"):
        resolve_weights(tmp_path, spec)
    run.save_checkpoint(spec, _checkpoint(spec))
    from_ckpt = resolve_weights(tmp_path, spec)
    np.testing.assert_array_equal(from_ckpt["fc1/kernel"], init_weights(spec, 0)["fc1/kernel"])
    np.testing.assert_array_equal(resolve_weights(tmp_path / CHECKPOINT_FILE, spec)["fc1/bias"],
                                  from_ckpt["fc1/bias"])
    final = {k: v + 1 for k, v in init_weights(spec, 0).items()}
    run.save_weights(final, spec, {"backend": "torch"})
    np.testing.assert_array_equal(resolve_weights(tmp_path, spec)["fc1/kernel"],
                                  final["fc1/kernel"])
    assert run.load_weights(spec).keys() == final.keys()


def test_metrics_log_appends_and_a_resume_forgets_later_records(tmp_path):
    run = RunDirectory(tmp_path)
    log = run.metrics_log()
    for i in (1, 5, 10):
        log.append({"iteration": i, "loss": 1.0 / i, "train_accuracy": 0.5,
                    "val_accuracy": None, "elapsed": 0.1 * i})
    assert [r["iteration"] for r in run.read_metrics()] == [1, 5, 10]
    kept = run.metrics_log(keep_until=5)
    assert [r["iteration"] for r in kept.records] == [1, 5]
    assert [r["iteration"] for r in run.read_metrics()] == [1, 5]
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == \
        "iteration,loss,train_accuracy,val_loss,val_accuracy,lr,elapsed"
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 3
    _no_temporaries(tmp_path)


def test_bad_metrics_name_the_file_and_line(tmp_path):
    with pytest.raises(RunDirectoryError, match="No training metrics at"):
        RunDirectory(tmp_path).read_metrics()
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 1}\n\n[1]\n')
    with pytest.raises(RunDirectoryError, match=r"metrics\.jsonl:3: expected a JSON object"):
        read_metrics_file(path)
    path.write_text('{"iteration": 1}\n{"iteration"\n')
    with pytest.raises(RunDirectoryError, match=r"metrics\.jsonl:2: not a JSON record"):
        RunDirectory(tmp_path).read_metrics()


def test_final_json(tmp_path):
    run = RunDirectory(tmp_path)
    assert run.read_final() == {}
    run.write_final({"iterations": 5, "test": {"accuracy": 0.5}})
    assert run.read_final()["test"] == {"accuracy": 0.5}
    (tmp_path / "final.json").write_text("[]")
    with pytest.raises(RunDirectoryError, match="final.json: expected a JSON object"):
        run.read_final()
