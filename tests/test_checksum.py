"""convspec.checksum with the weights and checkpoint readers: a changed byte anywhere is
refused naming the file; weights are float32 and finite; files from before the checksum still
load."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import LINEAR, tiny_dataset
from test_train import NumpyLinear

from convspec.architecture import architecture_metadata
from convspec.checksum import CHECKSUM_KEY, content_checksum, verify_checksum
from convspec.errors import WeightsError
from convspec.run_directory import CHECKPOINT_FILE, RunDirectory, resolve_weights
from convspec.specification import loads_spec
from convspec.train import Trainer
from convspec.weights import FORMAT, init_weights, load_weights, read_weights, save_weights

SPEC = loads_spec(LINEAR)


def _data_start(path) -> int:
    (header,) = struct.unpack("<Q", path.read_bytes()[:8])
    return 8 + header


def _flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_the_checksum_covers_names_shapes_types_values_and_metadata():
    arrays = {"a": np.zeros((2, 3), np.float32), "b": np.arange(3, dtype=np.int64)}
    meta = {"format": "x", "iteration": "3"}
    base = content_checksum(arrays, meta)
    assert base == content_checksum(dict(reversed(arrays.items())), meta)
    assert base == content_checksum(arrays, {**meta, CHECKSUM_KEY: "ignored"})
    changed = [
        {**arrays, "a": np.zeros((3, 2), np.float32)},
        {**arrays, "a": np.zeros((2, 3), np.float64)},
        {**arrays, "b": np.array([0, 1, 3])},
        {"c": arrays["a"], "b": arrays["b"]},
    ]
    assert all(content_checksum(c, meta) != base for c in changed)
    assert content_checksum(arrays, {**meta, "iteration": "8"}) != base
    assert not verify_checksum(arrays, meta, "old.safetensors")  # no checksum: older file
    assert verify_checksum(arrays, {**meta, CHECKSUM_KEY: base}, "f")


def test_a_flipped_byte_in_a_weights_file_is_refused(tmp_path):
    path = save_weights(tmp_path / "w.safetensors", init_weights(SPEC), SPEC)
    assert CHECKSUM_KEY in read_weights(path)[1]
    _flip(path, _data_start(path) + 100)
    with pytest.raises(WeightsError) as caught:
        load_weights(path, SPEC)
    assert str(caught.value).startswith(f"{path}: its content does not match its SHA-256 "
                                        "checksum; the file is damaged")


def test_a_flipped_byte_in_a_checkpoint_is_refused_and_the_run_not_resumed(tmp_path):
    run = RunDirectory(tmp_path / "run")
    Trainer(SPEC, NumpyLinear(SPEC), tiny_dataset(), run_dir=run, log=lambda m: None).fit(6)
    path = run.path / CHECKPOINT_FILE
    good = path.read_bytes()
    for offset in (_data_start(path) + 40, len(good) - 3):  # a weight, the sampler's order
        _flip(path, offset)
        trainer = Trainer(SPEC, NumpyLinear(SPEC), tiny_dataset(), run_dir=run,
                          log=lambda m: None)
        with pytest.raises(WeightsError, match="does not match its SHA-256 checksum"):
            trainer.resume()
        with pytest.raises(WeightsError, match=str(path)):
            resolve_weights(run.path, SPEC)  # evaluate, plot, export read it the same way
        path.write_bytes(good)
    header = good[8:_data_start(path)]
    meta_at = header.index(b'"iteration":"6"') + len(b'"iteration":"')
    _flip(path, 8 + meta_at)  # iteration 6 becomes 4: still JSON, still a number
    with pytest.raises(WeightsError, match="does not match its SHA-256 checksum"):
        run.load_checkpoint(SPEC)


def test_files_from_before_the_checksum_still_load(tmp_path):
    from safetensors.numpy import save_file

    weights = init_weights(SPEC)
    path = tmp_path / "old.safetensors"
    save_file(weights, str(path), metadata={"format": FORMAT, "spec_name": SPEC.name,
                                            **architecture_metadata(SPEC)})
    loaded = load_weights(path, SPEC)
    assert all(np.array_equal(loaded[k], weights[k]) for k in weights)


@pytest.mark.parametrize(("change", "message"), [
    (lambda w: w.astype(np.int32), "weight fc1/kernel is int32; convspec weights are float32"),
    (lambda w: w.astype(np.float64), "weight fc1/kernel is float64"),
    (lambda w: np.where(w > 0, np.nan, w).astype(np.float32),
     "weight fc1/kernel holds NaN or infinite values"),
])
def test_weights_must_be_finite_float32(tmp_path, change, message):
    from safetensors.numpy import save_file

    weights = init_weights(SPEC)
    weights["fc1/kernel"] = change(weights["fc1/kernel"])
    path = tmp_path / "w.safetensors"
    meta = {"format": FORMAT, "spec_name": SPEC.name, **architecture_metadata(SPEC)}
    save_file(weights, str(path), metadata=meta)
    with pytest.raises(WeightsError, match=message):
        load_weights(path, SPEC)
