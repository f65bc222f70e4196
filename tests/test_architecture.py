"""Weights belong to a network, not to a way of writing a spec: the canonical fingerprint, the
first difference it names, and files written before it existed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from convspec.architecture import (
    architecture_metadata,
    check_architecture,
    fingerprint,
    first_difference,
    legacy_hash,
)
from convspec.checkpoint import CHECKPOINT_FORMAT, Checkpoint
from convspec.errors import WeightsError
from convspec.run_directory import CHECKPOINT_FILE, RunDirectory
from convspec.specification import load_spec, loads_spec
from convspec.weights import FORMAT, init_weights, load_weights, save_weights

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT / "specs" / "mnist.yaml"
FASHION = ROOT / "specs" / "fashion_mnist.yaml"
README_SPEC = ROOT / "tests" / "specs" / "readme" / "mnist.yaml"


def variant(old: str, new: str, path: Path = MNIST):
    text = path.read_text(encoding="utf-8")
    assert old in text
    return loads_spec(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def mnist_weights(tmp_path_factory) -> Path:
    spec = load_spec(MNIST)
    path = tmp_path_factory.mktemp("w") / "weights.safetensors"
    return save_weights(path, init_weights(spec, seed=5), spec)


def test_the_readme_fixture_is_the_readme_spec_block():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```yaml\n", text.index("## The spec language")) + len("```yaml\n")
    assert README_SPEC.read_text(encoding="utf-8") == text[start:text.index("```", start)]


@pytest.mark.parametrize("path", [README_SPEC, FASHION], ids=["readme", "fashion_mnist"])
def test_mnist_weights_load_into_the_same_network_written_otherwise(mnist_weights, path):
    mnist, other = load_spec(MNIST), load_spec(path)
    assert legacy_hash(other) != legacy_hash(mnist)  # what used to refuse them
    assert other.architecture() == mnist.architecture()
    assert other.architecture_hash() == mnist.architecture_hash()
    loaded = load_weights(mnist_weights, other)
    expected = init_weights(mnist, seed=5)
    assert loaded.keys() == expected.keys()
    assert all(np.array_equal(loaded[k], expected[k]) for k in expected)


def test_the_fingerprint_is_resolved_and_ignores_weightless_names():
    print_ = fingerprint(load_spec(README_SPEC))
    assert print_["input"] == [28, 28, 1] and print_["classes"] == 10
    conv1, pool1, relu = print_["layers"][:3]
    assert conv1 == {"kind": "conv2d", "filters": 16, "kernel": [5, 5], "stride": [1, 1],
                     "padding": [[2, 2], [2, 2]], "dilation": [1, 1], "bias": True,
                     "activation": None,
                     "weights": [["conv1/kernel", [5, 5, 1, 16]], ["conv1/bias", [16]]]}
    assert pool1 == {"kind": "maxpool", "size": [2, 2], "stride": [2, 2],
                     "padding": [[0, 0], [0, 0]], "weights": []}
    assert relu == {"kind": "relu", "weights": []}
    assert json.loads(json.dumps(print_)) == print_


@pytest.mark.parametrize("old, new, reason", [
    ("filters: 36", "filters: 32", "layer 3 (conv2) filters is 36 in the weights file, 32"),
    ("channels: 1", "channels: 3", "input is 28x28x1 in the weights file, 28x28x3"),
    ("kind: maxpool, name: pool1", "kind: avgpool, name: pool1",
     "layer 1 (pool1) kind is 'maxpool' in the weights file, 'avgpool'"),
    ("filters: 16, kernel: 5, stride: 1, padding: same}", "filters: 16, kernel: 5, padding: 1}",
     "layer 0 (conv1) padding is [[2, 2], [2, 2]] in the weights file, [[1, 1], [1, 1]]"),
    ("units: 128, activation: relu", "units: 128, activation: tanh",
     "layer 7 (fc1) activation is 'relu' in the weights file, 'tanh'"),
    ("name: fc1", "name: hidden", "layer 7 (hidden) weight names are fc1/kernel, fc1/bias in "
                                  "the weights file, hidden/kernel, hidden/bias"),
    ("{kind: dense, name: fc2, units: 10}", "{kind: dense, name: fc2, units: 10, bias: false}",
     "layer 8 (fc2) bias is true in the weights file, false"),
    ("  - {kind: dense, name: fc2", "  - {kind: dropout, rate: 0.5}\n  - {kind: dense, name: fc2",
     "layer 8 (dropout1) kind is 'dense' in the weights file, 'dropout'"),
    ("  - {kind: dense, name: fc2, units: 10}", "  - {kind: dense, name: fc2, units: 10}\n"
                                               "  - {kind: relu}",
     "number of layers is 9 in the weights file, 10"),
])
def test_a_different_network_is_refused_naming_the_first_difference(mnist_weights, old, new,
                                                                      reason):
    spec = variant(old, new)
    with pytest.raises(WeightsError) as info:
        load_weights(mnist_weights, spec)
    message = str(info.value)
    assert message == f"{mnist_weights} was trained for a different network: {reason} in " \
                      f"spec 'mnist'"
    assert "\n" not in message


def test_first_difference_compares_in_network_order():
    a, b = fingerprint(load_spec(MNIST)), fingerprint(load_spec(MNIST))
    assert first_difference(a, b, []) is None
    b["classes"] = 5
    b["layers"][4]["size"] = [3, 3]
    b["layers"][0]["filters"] = 8
    names = [layer.name for layer in load_spec(MNIST).layers]
    assert first_difference(a, b, names) == ("classes", 10, 5)
    b["classes"] = 10
    assert first_difference(a, b, names) == ("layer 0 (conv1) filters", 16, 8)
    b["layers"][0]["filters"] = 16
    assert first_difference(a, b, names) == ("layer 4 (pool2) size", [2, 2], [3, 3])


def _old_weights_file(path: Path, spec, weights) -> Path:
    """A weights file as convspec wrote them before the fingerprint existed."""
    d = spec.to_dict()
    architecture = {"input": d["input"], "classes": d["classes"], "layers": d["layers"]}
    save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(path), metadata={
        "format": FORMAT, "spec_name": spec.name, "architecture_hash": legacy_hash(spec),
        "architecture": json.dumps(architecture, sort_keys=True)})
    return path


def test_an_old_format_weights_file_loads_when_the_network_is_the_same(tmp_path):
    mnist = load_spec(MNIST)
    weights = init_weights(mnist, seed=2)
    path = _old_weights_file(tmp_path / "old.safetensors", mnist, weights)
    for spec in (mnist, load_spec(README_SPEC), load_spec(FASHION)):
        loaded = load_weights(path, spec)
        assert all(np.array_equal(loaded[k], weights[k]) for k in weights)
    with pytest.raises(WeightsError, match=r"was trained for a different network: layer 3 "
                                           r"\(conv2\) filters is 36 in the weights file, 32"):
        load_weights(path, variant("filters: 36", "filters: 32"))


def _checkpoint(spec) -> Checkpoint:
    return Checkpoint(iteration=3, weights=init_weights(spec), optimizer={},
                      sampler={"order": np.arange(4), "epoch": 0, "position": 0}, elapsed=1.5)


def test_checkpoints_use_the_same_check(tmp_path):
    mnist = load_spec(MNIST)
    run = RunDirectory(tmp_path)
    run.save_checkpoint(mnist, _checkpoint(mnist))
    assert run.load_checkpoint(load_spec(README_SPEC)).iteration == 3
    with pytest.raises(WeightsError) as info:
        run.load_checkpoint(variant("filters: 36", "filters: 32"))
    assert str(info.value) == (f"{tmp_path / CHECKPOINT_FILE} was trained for a different "
                               f"network: layer 3 (conv2) filters is 36 in the checkpoint, 32 in "
                               f"spec 'mnist'")


def test_an_old_format_checkpoint_loads_by_its_hash(tmp_path):
    mnist = load_spec(MNIST)
    ckpt = _checkpoint(mnist)
    arrays = {f"weights/{k}": v for k, v in ckpt.weights.items()}
    arrays["sampler/order"] = np.arange(4)
    save_file(arrays, str(tmp_path / CHECKPOINT_FILE), metadata={
        "format": CHECKPOINT_FORMAT, "architecture_hash": legacy_hash(mnist), "iteration": "3",
        "elapsed": "1.5", "sampler": json.dumps({"epoch": 0, "position": 0})})
    run = RunDirectory(tmp_path)
    assert run.load_checkpoint(mnist).iteration == 3
    with pytest.raises(WeightsError, match="was trained for a different network than spec "
                                           "'mnist'"):
        run.load_checkpoint(variant("filters: 36", "filters: 32"))


@pytest.mark.parametrize("meta, fragment", [
    ({"fingerprint": "{not json"}, "cannot read the network it was trained for"),
    ({"fingerprint": "[1, 2]"}, "its 'fingerprint' entry is not a mapping"),
    ({"architecture": json.dumps({"input": {"height": 1}})}, "cannot read the network"),
    ({}, "was trained for a different network than spec 'mnist' (architecture None"),
])
def test_unreadable_architecture_metadata_is_a_clear_error(meta, fragment):
    with pytest.raises(WeightsError) as info:
        check_architecture(meta, load_spec(MNIST), "w.safetensors")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_metadata_holds_the_fingerprint_and_its_hash():
    spec = load_spec(MNIST)
    meta = architecture_metadata(spec)
    assert json.loads(meta["fingerprint"]) == spec.architecture()
    assert meta["architecture_hash"] == spec.architecture_hash()
