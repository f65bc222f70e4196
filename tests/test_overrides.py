"""``Spec.override``: changes by path give a new validated spec, or errors named by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from convspec.errors import SpecError
from convspec.specification import load_spec, loads_spec
from convspec.specification.overrides import parse_assignment, parse_path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT / "specs" / "mnist.yaml"


@pytest.fixture
def mnist():
    return load_spec(MNIST)


def error_of(spec, changes, **kwargs) -> SpecError:
    with pytest.raises(SpecError) as info:
        spec.override(changes, **kwargs)
    return info.value


@pytest.mark.parametrize("key, path", [
    ("train.iterations", ("train", "iterations")),
    ("train.optimizer.learning_rate", ("train", "optimizer", "learning_rate")),
    ("layers[0].filters", ("layers", 0, "filters")),
    ("layers[12].kernel", ("layers", 12, "kernel")),
    ("classes", ("classes",)),
])
def test_parse_path(key, path):
    assert parse_path(key) == path


@pytest.mark.parametrize("key", ["", "a..b", "layers[x].filters", "layers[0]filters", ".a",
                                 "a.", "layers[-1].units", "1abc"])
def test_parse_path_refuses_malformed_keys(key):
    with pytest.raises(ValueError, match="not a setting path"):
        parse_path(key)


def test_override_returns_a_new_validated_spec(mnist):
    before = mnist.to_dict()
    spec = mnist.override({"train.iterations": 5, "train.optimizer.learning_rate": 0.01,
                           "layers[0].filters": 8, "input.height": 32})
    assert mnist.to_dict() == before  # the original is untouched
    assert (spec.train.iterations, spec.train.optimizer.learning_rate) == (5, 0.01)
    assert spec.layers[0].filters == 8 and spec.input.height == 32
    assert spec.table["conv1"].output == (32, 28, 8)  # shapes are the new ones
    assert spec.table["fc1"].input == (8 * 7 * 36,)
    assert [layer.name for layer in spec.layers] == [layer.name for layer in mnist.layers]


def test_iterations_and_epochs_replace_each_other(mnist):
    by_epochs = mnist.override({"train.epochs": 2})
    assert (by_epochs.train.epochs, by_epochs.train.iterations) == (2, None)
    back = by_epochs.override({"train.iterations": 7})
    assert (back.train.epochs, back.train.iterations) == (None, 7)
    error = error_of(mnist, {"train.iterations": 3, "train.epochs": 2})
    assert str(error) == "command line: train.epochs: give either 'iterations' or 'epochs', " \
                         "not both"


def test_a_bad_value_gets_the_message_a_file_gets(mnist, tmp_path):
    error = error_of(mnist, {"layers[0].filters": 0})
    assert str(error) == "command line: layers[0].filters: must be a positive integer, got 0"
    (item,) = error.items
    assert (item.path, item.line) == ("layers[0].filters", None)
    # the same mistake in the file
    path = tmp_path / "m.yaml"
    path.write_text(MNIST.read_text().replace("filters: 16", "filters: 0"))
    with pytest.raises(SpecError) as in_file:
        load_spec(path)
    assert in_file.value.items[0].message == item.message


@pytest.mark.parametrize("changes, expected", [
    ({"train.batch_size": "5"}, "train.batch_size: must be an integer, got '5'"),
    ({"train.optimizer.learning_rate": -1.0},
     "train.optimizer.learning_rate: must be greater than 0.0, got -1.0"),
    ({"trian.iterations": 3}, "trian.iterations: unknown key 'trian'; did you mean 'train'?"),
    ({"train.optimizer.lr": 0.1}, "train.optimizer.lr: unknown key 'lr'. Allowed: beta1, beta2, "
                                  "epsilon, learning_rate"),
    ({"layers[1].filters": 3}, "layers[1].filters: unknown key 'filters'. Allowed: inputs, "
                               "name, padding, size, stride"),
    ({"layers[12].filters": 3}, "layers[12].filters: there is no layers[12]: layers has 9 "
                                "entries"),
    ({"classes.n": 3}, "classes.n: classes is not a mapping"),
    ({"layers[3].name": "conv1"},
     "layers[3].name: duplicate layer name 'conv1' (also layers[0])"),
    ({"a..b": 1}, "not a setting path: 'a..b'"),
])
def test_errors_name_the_path_and_the_command_line(mnist, changes, expected):
    error = error_of(mnist, changes)
    assert error.source == "command line"
    assert str(error).startswith("command line: ")
    assert expected in str(error)


def test_several_bad_values_are_reported_together(mnist):
    error = error_of(mnist, {"layers[0].filters": 0, "train.seed": -1}, source="--set")
    assert [item.path for item in error.items] == ["layers[0].filters", "train.seed"]
    assert str(error).splitlines()[1] == "--set: train.seed: must be at least 0, got -1"


def test_a_change_that_breaks_the_shapes_is_located_at_the_layer(mnist):
    error = error_of(mnist, {"classes": 3})
    assert str(error) == ("command line: layers[8].dense (fc2): the network ends with output 10 "
                          "but classes is 3; end with '- kind: dense' with units: 3 (after a "
                          "flatten)")
    spec = mnist.override({"classes": 3, "layers[8].units": 3})
    assert spec.table.rows[-1].output == (3,)


def test_override_of_a_spec_from_code():
    spec = loads_spec("name: t\ninput: {height: 4, width: 4, channels: 1}\nclasses: 2\n"
                      "layers:\n  - {kind: flatten}\n  - {kind: dense, units: 2}\n")
    wider = spec.override({"input.channels": 3})
    assert wider.table["fc1"].input == (48,)


@pytest.mark.parametrize(("text", "key", "value"), [
    ("train.optimizer.learning_rate=3e-4", "train.optimizer.learning_rate", 3e-4),
    ("layers[0].filters=32", "layers[0].filters", 32),
    ("train.optimizer={kind: sgd}", "train.optimizer", {"kind": "sgd"}),
    ("layers[0].kernel=[3, 5]", "layers[0].kernel", [3, 5]),
    ("train.validate_every=epoch", "train.validate_every", "epoch"),
    ("train.early_stopping=null", "train.early_stopping", None),
    ("name = my-net", "name", "my-net"),
    ("description=a=b", "description", "a=b"),
])
def test_parse_assignment_reads_values_as_a_spec_file_does(text, key, value):
    assert parse_assignment(text) == (key, value)


@pytest.mark.parametrize(("text", "message"), [
    ("train.seed", "expected KEY=VALUE"),
    ("train.seed=", "needs a value"),
    ("layers[-1].units=3", "not a setting path"),
    ("train.optimizer={kind: sgd", "is not valid YAML"),
])
def test_parse_assignment_refuses_malformed_text(text, message):
    with pytest.raises(ValueError, match=message):
        parse_assignment(text)


def test_set_values_are_validated_like_the_file(mnist):
    key, value = parse_assignment("train.optimizer={kind: sgd, learning_rate: -1}")
    error = error_of(mnist, {key: value})
    assert "command line: train.optimizer.sgd.learning_rate: must be greater than 0" in str(error)
