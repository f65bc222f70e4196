"""Files written and read by the commands: a read-only or full disk, a killed writer, a torn
metrics record and a damaged run directory each give one line naming the path and exit 1 (never
a traceback), and never cost the run its intact checkpoint.

Covers: convspec.cli, convspec.atomic_files, convspec.run_directory, convspec.report,
convspec.train.run (file failures through the commands).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import SMALL, require_backend, tiny_dataset
from mounts import full_disk, read_only, simulated_read_only

import convspec.report
import convspec.train.run
from convspec.cli import main
from convspec.run_directory import CHECKPOINT_FILE, RunDirectory

SPEC = SMALL.replace("iterations: 40", "iterations: 12").replace("validate_every: 20",
                                                                 "validate_every: 6")


@pytest.fixture
def spec_file(monkeypatch, tmp_path):
    """SMALL (a conv net) for 12 iterations on the tiny dataset, with torch."""
    require_backend("torch")
    monkeypatch.setattr(convspec.train.run, "load_data", lambda *a, **k: tiny_dataset())
    monkeypatch.setattr(convspec.report, "run_data", lambda *a, **k: tiny_dataset())
    path = tmp_path / "small.yaml"
    path.write_text(SPEC)
    return path


def _train(*args: str) -> int:
    return main(["train", *args, "--backend", "torch", "--no-progress"])


def _one_line(err: str, *needles: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


@pytest.fixture
def run_dir(spec_file, tmp_path):
    out = tmp_path / "run"
    assert _train(str(spec_file), "--out", str(out)) == 0
    return out


@pytest.mark.parametrize("how", ["mounted", "simulated"])
def test_train_into_a_read_only_folder_fails_before_any_work(spec_file, tmp_path,
                                                             monkeypatch, capsys, how):
    folder = tmp_path / "ro"
    folder.mkdir()
    loads = []
    monkeypatch.setattr(convspec.train.run, "load_data",
                        lambda *a, **k: loads.append(1) or tiny_dataset())
    code = "(EROFS)" if how == "mounted" else "(EACCES)"
    with (read_only(folder) if how == "mounted" else
          simulated_read_only(monkeypatch, folder)):
        assert _train(str(spec_file), "--out", str(folder / "run")) == 1
        _one_line(capsys.readouterr().err, f"cannot create {folder / 'run'}", code)
        monkeypatch.chdir(folder)  # the default runs/ folder in a read-only current folder
        assert _train(str(spec_file)) == 1
        _one_line(capsys.readouterr().err, "cannot create runs", code)
    assert loads == [] and os.listdir(folder) == []


@pytest.mark.parametrize("how", ["mounted", "simulated"])
def test_every_command_that_writes_into_a_read_only_run_is_one_line(run_dir, capsys, how,
                                                                    monkeypatch):
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    commands = {
        "resume": ["train", "--resume", str(run_dir), "--iterations", "18", "--no-progress"],
        "plot": ["plot", str(run_dir), "--what", "confusion"],
        "report": ["report", str(run_dir)],
        "export": ["export", str(run_dir), "--format", "onnx"],
        "schema": ["schema", "--out", str(run_dir / "schema.json")],
    }
    with (read_only(run_dir) if how == "mounted" else
          simulated_read_only(monkeypatch, run_dir)):
        for name, args in commands.items():
            if name == "export":
                pytest.importorskip("onnx")
            capsys.readouterr()
            assert main(args) == 1, name
            err = capsys.readouterr().err
            _one_line(err, str(run_dir))
            # a simulated one only answers os.access with "no": that reads as a permission
            assert "Read-only file system (EROFS)" in err or (
                how == "simulated" and "Permission denied (EACCES)" in err), err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_a_full_disk_stops_training_in_one_line_and_the_checkpoint_resumes(spec_file,
                                                                           tmp_path, capsys):
    with full_disk(tmp_path / "disk", size_kb=48) as disk:
        out = disk / "run"
        code = _train(str(spec_file), "--out", str(out), "--checkpoint-every", "3")
        err = capsys.readouterr().err
        assert code == 1
        _one_line(err, "No space left on device (ENOSPC)", "training stopped at iteration",
                  "the checkpoint of iteration", f"convspec train --resume {out}")
        kept = tmp_path / "kept"
        shutil.copytree(out, kept)
    # elsewhere, with space, the run continues from its intact checkpoint
    assert main(["train", "--resume", str(kept), "--no-progress"]) == 0
    assert RunDirectory(kept).read_final()["iterations"] == 12
    assert all(not p.name.endswith(".tmp") for p in kept.iterdir())


@pytest.mark.slow
def test_a_torn_metrics_record_does_not_stop_a_resume(run_dir, capsys):
    jsonl = run_dir / "metrics.jsonl"
    records = jsonl.read_text()
    jsonl.write_text(records + '{"iteration": 13, "loss": 0.4, "train_acc')  # no newline
    (run_dir / "metrics.csv").write_text((run_dir / "metrics.csv").read_text() + "13,0.")
    assert main(["plot", str(run_dir), "--what", "curves"]) == 0  # readers drop it too
    assert main(["train", "--resume", str(run_dir), "--iterations", "18",
                 "--no-progress"]) == 0
    text = jsonl.read_text()
    assert text.endswith("\n") and "train_acc\n" not in text and '"iteration": 13' not in text
    iterations = [json.loads(line)["iteration"] for line in text.splitlines()]
    assert iterations[-1] == 18 and iterations == sorted(set(iterations))


def test_records_after_the_checkpoint_are_dropped_on_resume(run_dir, capsys):
    ckpt = RunDirectory(run_dir).load_checkpoint(
        RunDirectory(run_dir).load_spec()).iteration
    jsonl = run_dir / "metrics.jsonl"
    jsonl.write_text(jsonl.read_text() + '{"iteration": 99, "loss": "?"}\nnot json\n')
    assert main(["train", "--resume", str(run_dir), "--iterations", "14",
                 "--no-progress"]) == 0
    iterations = [json.loads(line)["iteration"] for line in jsonl.read_text().splitlines()]
    assert 99 not in iterations and iterations[-1] == 14 and ckpt == 12


@pytest.mark.slow
def test_a_killed_checkpoint_write_leaves_nothing_after_the_next_resume(run_dir, capsys):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = run_dir / f".{CHECKPOINT_FILE}.{proc.pid}.x8k2mq_a.tmp"
    stale.write_bytes(b"\0" * (run_dir / CHECKPOINT_FILE).stat().st_size)
    legacy = run_dir / f".{CHECKPOINT_FILE}.ab12cd34.tmp"  # an older convspec's name
    legacy.write_bytes(b"\0" * 100)
    assert main(["evaluate", str(run_dir)]) == 0  # a reader removes what a dead writer left
    assert not stale.exists() and legacy.exists()
    assert main(["train", "--resume", str(run_dir), "--iterations", "14",
                 "--no-progress"]) == 0
    assert not legacy.exists()  # the run's one writer removes the older kind too


@pytest.mark.slow
def test_a_damaged_run_directory_is_one_line_for_every_reader(run_dir, capsys):
    readers = [["evaluate", str(run_dir)], ["plot", str(run_dir), "--what", "curves"],
               ["report", str(run_dir)], ["train", "--resume", str(run_dir), "--no-progress"]]
    damage = {
        "config.json": ("[1, 2]", "expected a JSON object describing the run, got a list"),
        "metrics.jsonl": ('{"loss": 1.0}\n', "metrics.jsonl:1: 'iteration' must be"),
    }
    for name, (text, message) in damage.items():
        good = (run_dir / name).read_bytes()
        (run_dir / name).write_text(text)
        for args in readers:
            if name == "metrics.jsonl" and args[0] in ("evaluate", "train"):
                continue  # they do not read the metrics (resume drops what follows)
            capsys.readouterr()
            assert main(args) == 1, (name, args)
            _one_line(capsys.readouterr().err, message)
        (run_dir / name).write_bytes(good)


def test_a_full_disk_tearing_a_metrics_record_still_resumes(spec_file, tmp_path,
                                                            monkeypatch, capsys):
    """The issue's sequence, simulated where no tmpfs can be mounted: an append runs out of
    space halfway through a record (a torn last line), the run stops in one line, and once
    there is space again ``--resume`` continues from the intact checkpoint."""
    import errno

    import convspec.run_metrics
    from convspec.atomic_files import write_error

    real = convspec.run_metrics.append_text
    calls = []

    def tearing(path, text):
        calls.append(path)
        if len(calls) == 5 and path.name == "metrics.jsonl":
            real(path, text[: len(text) // 2])
            raise write_error(OSError(errno.ENOSPC, "No space left on device"), path)
        real(path, text)

    monkeypatch.setattr(convspec.run_metrics, "append_text", tearing)
    out = tmp_path / "run"
    assert _train(str(spec_file), "--out", str(out), "--checkpoint-every", "3") == 1
    _one_line(capsys.readouterr().err, "metrics.jsonl: No space left on device (ENOSPC)",
              "the checkpoint of iteration 9 is kept")
    assert not (out / "metrics.jsonl").read_text().endswith("\n")  # torn
    monkeypatch.setattr(convspec.run_metrics, "append_text", real)
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert RunDirectory(out).read_final()["iterations"] == 12
    assert [r["iteration"] for r in RunDirectory(out).read_metrics()][-1] == 12
