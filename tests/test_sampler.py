"""convspec.train.sampler: a batch never larger than the training set, and a saved state
that does not fit the data refused instead of looping, reading out of range or crashing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import LINEAR, tiny_dataset
from test_train import NumpyLinear

import convspec.train.run
from convspec.errors import DataError, WeightsError
from convspec.run_directory import CHECKPOINT_FILE, RunDirectory
from convspec.specification import loads_spec
from convspec.train import BatchSampler, Trainer
from convspec.train.sampler import check_batch_size

CASES = Path(__file__).parent / "cases"


def test_a_batch_larger_than_the_training_set_is_refused_not_looped():
    spec = loads_spec(LINEAR).override({"train.batch_size": 10**9})
    with pytest.raises(DataError, match=r"train.batch_size 1,000,000,000 is "
                                        r"larger than the training set \(96 images\); use "
                                        r"at most 96 \(--batch-size 96\)"):
        check_batch_size(spec, 96)
    check_batch_size(spec.override({"train.batch_size": 96}), 96)
    for batch in (97, 10**20, 0):
        with pytest.raises(DataError, match="does not fit a training set of 96 images"):
            BatchSampler(96, batch, seed=0)
    whole = BatchSampler(96, 96, seed=0)  # the whole set is one batch: each epoch one step
    for _ in range(3):
        assert sorted(whole.next()) == list(range(96))


def test_the_huge_batch_case_is_refused_before_training(tmp_path, monkeypatch, capsys):
    from test_train_run import NumpyBackend, _train

    from convspec import backends

    monkeypatch.setitem(backends.BUILTIN, NumpyBackend.name, "test_train_run:NumpyBackend")
    monkeypatch.setattr(convspec.train.run, "load_data", lambda *a, **k: tiny_dataset())
    steps = []
    monkeypatch.setattr(NumpyLinear, "train_step", lambda *a, **k: steps.append(1))
    out = tmp_path / "run"
    # beyond every size's bound: a located error from the spec
    assert _train(str(CASES / "huge-batch.yaml"), "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "huge-batch.yaml:8:58: train.batch_size: must be at most 2,147,483,647, got " \
           "100000000000000000000" in err
    assert "Traceback" not in err and not out.exists() and steps == []
    # within the bound but larger than the training set: refused before the first step
    within = tmp_path / "large-batch.yaml"
    within.write_text((CASES / "huge-batch.yaml").read_text().replace(
        "100000000000000000000", "2147483647"))
    assert _train(str(within), "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "train.batch_size 2,147,483,647 is larger than the training set (96 images)" in err
    assert "Traceback" not in err and not out.exists() and steps == []


def _saved(tmp_path: Path) -> tuple[RunDirectory, object]:
    """A run directory with a checkpoint after 6 steps of LINEAR on the tiny dataset."""
    spec = loads_spec(LINEAR)
    run = RunDirectory(tmp_path / "run")
    Trainer(spec, NumpyLinear(spec), tiny_dataset(), run_dir=run, log=lambda m: None).fit(6)
    return run, spec


def _rewrite_sampler(run: RunDirectory, change) -> None:
    """Rewrite the checkpoint with its sampler state changed (a valid file, new checksum)."""
    from safetensors.numpy import load_file, save_file

    from convspec.checksum import with_checksum
    from convspec.weights import read_safetensors

    path = run.path / CHECKPOINT_FILE
    arrays, meta = read_safetensors(path, "checkpoint")
    arrays = dict(load_file(str(path)))
    sampler = json.loads(meta["sampler"])
    arrays["sampler/order"], sampler = change(arrays["sampler/order"], sampler)
    meta = dict(meta, sampler=json.dumps(sampler))
    meta.pop("sha256")
    save_file(arrays, str(path), metadata=with_checksum(arrays, meta))


@pytest.mark.parametrize(("change", "message"), [
    (lambda o, s: (o + 1000, s), "not a permutation of the 96 training images"),
    (lambda o, s: (o[:50], s), "its data order has 50 int64 entries; the training set has 96"),
    (lambda o, s: (np.zeros_like(o), s), "not a permutation"),
    (lambda o, s: (o, {**s, "pos": 10**30}), "its data position is 10{30}, not an integer in"),
    (lambda o, s: (o, {**s, "pos": 96}), "its data position is 96, not an integer in \\[0, 95"),
    (lambda o, s: (o, {**s, "pos": -1}), "its data position is -1, not an integer in"),
    (lambda o, s: (o, {**s, "pos": 1.5}), "its data position is 1.5"),
    (lambda o, s: (o, {**s, "epoch": "x"}), "its data epoch is 'x'"),
    (lambda o, s: (o, {**s, "rng": {"bit_generator": "MT19937"}}),
     "its random state is not a PCG64 state"),
    (lambda o, s: (o.astype(np.int32), s), "sampler/order is int32 of shape \\(96,\\), not a "
                                          "1-D int64 array"),
    (lambda o, s: (o, {k: v for k, v in s.items() if k != "rng"}),
     "its random state is not a PCG64 state"),
])
def test_a_damaged_sampler_state_is_refused_naming_the_checkpoint(tmp_path, change, message):
    run, spec = _saved(tmp_path)
    _rewrite_sampler(run, change)
    before = (run.path / "metrics.jsonl").read_bytes()
    trainer = Trainer(spec, NumpyLinear(spec), tiny_dataset(), run_dir=run,
                      log=lambda m: None)
    with pytest.raises(WeightsError, match=message) as caught:
        trainer.resume()
    assert str(run.path / CHECKPOINT_FILE) in str(caught.value)
    assert "cannot resume from this checkpoint" in str(caught.value)
    assert trainer.iteration == 0  # nothing was restored
    assert (run.path / "metrics.jsonl").read_bytes() == before  # nothing rewritten


def test_a_checkpoint_of_another_training_set_size_is_refused(tmp_path):
    run, spec = _saved(tmp_path)
    smaller = tiny_dataset(n_train=40)
    trainer = Trainer(spec, NumpyLinear(spec), smaller, run_dir=run, log=lambda m: None)
    with pytest.raises(WeightsError, match="its data order has 96 int64 entries; the "
                                           "training set has 40 images"):
        trainer.resume()
