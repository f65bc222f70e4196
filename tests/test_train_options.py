"""convspec.train.options and ``convspec train``'s options: --set (any key), the shortcut
options, --print-spec, --validate-every, early stopping options, resume policy; through the
CLI with the NumPy backend of test_train_run (no framework needed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT, SPECS
from test_train_run import NumpyBackend

from convspec.cli import main
from convspec.errors import UsageError
from convspec.run_directory import RunDirectory
from convspec.specification import load_spec, loads_spec
from convspec.train import apply_overrides
from convspec.train.options import spec_changes

MNIST = load_spec(SPECS / "mnist.yaml")



def _train(*args: str) -> int:
    return main(["train", *args, "--backend", NumpyBackend.name, "--no-progress"])


def test_parents_are_set_before_their_children():
    spec = apply_overrides(MNIST, {"lr": 0.1, "set": {"train.optimizer": {"kind": "sgd"}}})
    assert (spec.train.optimizer.kind, spec.train.optimizer.learning_rate) == ("sgd", 0.1)
    assert list(spec_changes(MNIST, {"set": {"layers[0].filters": 8, "train.seed": 3,
                                             "train": {"iterations": 5}}})) == [
        "train", "train.seed", "layers[0].filters"]


def test_a_shortcut_and_set_of_one_path_is_a_usage_error():
    with pytest.raises(UsageError, match="--set train.optimizer.learning_rate=... and --lr"):
        spec_changes(MNIST, {"lr": 0.1, "set": {"train.optimizer.learning_rate": 0.2}})
    with pytest.raises(UsageError, match="either --iterations or --epochs"):
        spec_changes(MNIST, {"iterations": 5, "epochs": 2})


def test_monitor_sets_the_best_checkpoint_and_early_stopping_when_it_is_on():
    off = apply_overrides(MNIST, {"monitor": "val_accuracy"})
    assert off.train.best.monitor == "val_accuracy" and off.train.early_stopping is None
    on = apply_overrides(MNIST, {"monitor": "val_accuracy", "patience": 4, "min_delta": 0.01})
    stopping = on.train.early_stopping
    assert (stopping.monitor, stopping.patience, stopping.min_delta) == ("val_accuracy", 4, 0.01)


def test_set_changes_any_key_and_is_recorded(linear, tmp_path):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out), "--set", "train.log_every=2",
                  "--set", "train.optimizer={kind: momentum, learning_rate: 0.05}",
                  "--set", "train.seed=7") == 0
    spec = RunDirectory.open(out).load_spec()
    assert spec.train.log_every == 2 and spec.train.seed == 7
    assert (spec.train.optimizer.kind, spec.train.optimizer.learning_rate) == ("momentum", 0.05)
    config = json.loads((out / "config.json").read_text())
    assert config["overrides"]["set"]["train.optimizer"] == {"kind": "momentum",
                                                             "learning_rate": 0.05}
    assert [r["iteration"] for r in RunDirectory(out).read_metrics()][:3] == [1, 3, 5]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--set", "layers[1].units=-3"], 1, "command line: layers[1].units: must be a positive "
                                         "integer, got -3"),
    (["--set", "train.optimizer.kind=adamw"], 1, "command line: train.optimizer: unknown kind "
                                                 "'adamw'"),
    (["--set", "layers[1].units=7"], 1, "layers[1].dense (fc1): the network ends with output 7 "
                                        "but classes is 10"),
    (["--set", "train.bach_size=3"], 1, "unknown key 'bach_size'; did you mean 'batch_size'?"),
    (["--set", "layers[5].units=3"], 1, "there is no layers[5]: layers has 2 entries"),
    (["--set", "train.seed"], 2, "--set train.seed: expected KEY=VALUE"),
    (["--set", "train.seed="], 2, "train.seed= needs a value"),
    (["--set", "train.optimizer={kind: sgd"], 2, "the value of train.optimizer is not valid YAML"),
    (["--set", "layers[x].units=3"], 2, "not a setting path: 'layers[x].units'"),
    (["--validate-every", "weekly"], 2,
     "is neither a number of iterations from 1 to 2,147,483,647 nor 'epoch'"),
    (["--lr", "0.1", "--set", "train.optimizer.learning_rate=0.2"], 2, "give one"),
])
def test_bad_settings_get_the_messages_of_a_spec_file(linear, tmp_path, capsys, args, code,
                                                      message):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out), *args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_print_spec_prints_the_resolved_spec_and_its_shapes_and_exits(linear, tmp_path,
                                                                      capsys):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out), "--print-spec", "--lr", "0.5",
                  "--set", "train.schedule={kind: cosine, warmup_steps: 3}",
                  "--validate-every", "epoch") == 0
    text = capsys.readouterr().out
    spec = loads_spec(text)  # valid YAML: the shape table is in comments
    assert spec.train.optimizer.learning_rate == 0.5 and spec.train.schedule.kind == "cosine"
    assert spec.train.validate_every == "epoch" and spec.train.best.monitor == "val_loss"
    assert re.search(r"^# fc1 +dense +10 +7,850 +7,840$", text, re.M)
    assert "7,850 parameters" in text
    assert not out.exists()


def test_print_spec_loads_no_framework():
    code = ("import sys\nfrom convspec.cli import main\n"
            "code = main(['train', 'specs/mnist.yaml', '--print-spec', '--set', "
            "'layers[0].filters=8'])\n"
            "print(code, sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 []"
    assert "conv1    conv2d   28x28x8" in result.stdout


def test_a_schedule_trains_and_each_record_logs_its_steps_rate(linear, tmp_path):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out), "--lr", "0.01",
                  "--set", "train.schedule={kind: step, step_size: 4, gamma: 0.5}") == 0
    rates = [(r["iteration"], r["lr"]) for r in RunDirectory(out).read_metrics()]
    assert rates == [(it, 0.01 * 0.5 ** ((it - 1) // 4)) for it in (1, 4, 6, 7, 10, 12)]


def test_regularisation_a_backend_lacks_is_refused_before_any_work(linear, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out), "--set", "train.l2=0.01") == 1
    assert "no L2 regularisation, used by train.l2" in capsys.readouterr().err
    assert not out.exists()


def test_validation_and_early_stopping_options(linear, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out), "--iterations", "40", "--validate-every", "4",
                  "--patience", "1", "--min-delta", "0.5", "--monitor", "val_accuracy") == 0
    text = capsys.readouterr().out
    spec = RunDirectory.open(out).load_spec()
    assert spec.train.validate_every == 4
    assert spec.train.early_stopping.patience == 1
    final = RunDirectory(out).read_final()
    assert final["stopped_early"] == 8 == final["iterations"]  # 4: the first; 8: no +0.5
    validations = [r for r in RunDirectory(out).read_metrics() if r["val_accuracy"] is not None]
    best = max(validations, key=lambda r: r["val_accuracy"])  # the first of equals
    assert final["best"]["monitor"] == "val_accuracy"
    assert (final["best"]["iteration"], final["best"]["value"]) == (best["iteration"],
                                                                   best["val_accuracy"])
    assert 0 <= final["best"]["test_accuracy"] <= 1
    assert "Early stopping at iteration 8" in text and "Best val_accuracy" in text


def test_resuming_refuses_settings_that_would_change_the_run(linear, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out)) == 0
    capsys.readouterr()
    for args in (["--set", "train.seed=3"], ["--patience", "2"], ["--validate-every", "2"]):
        assert _train("--resume", str(out), *args) == 2
        err = capsys.readouterr().err
        assert "when resuming (a resumed run continues exactly)" in err


def test_no_tensorboard_writes_no_event_file(linear, tmp_path):
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out), "--no-tensorboard") == 0
    assert not list(out.glob("events.out.tfevents.*"))
