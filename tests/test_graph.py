"""Graphs in the spec: a layer takes the layers it names (else the previous one); every stack
means what it did; the rules a graph obeys; connections in the fingerprint."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import SPECS
from pydantic import ValidationError

from convspec.backends.reference import ReferenceModel
from convspec.graph import IMAGE_INPUT, is_stack, resolved_inputs
from convspec.specification import Spec, load_spec, loads_spec
from convspec.weights import init_weights, load_weights, save_weights

HEAD = """\
name: g
input: {height: 6, width: 6, channels: 2}
classes: 3
layers:
"""


def make(*layers: str, name: str = "g"):
    return loads_spec(HEAD.replace("name: g", f"name: {name}")
                      + "".join(f"  - {layer}\n" for layer in layers))


RESIDUAL = ("{kind: conv2d, name: a, filters: 2, kernel: 3, padding: same}",
            "{kind: relu, name: r}",
            "{kind: add, name: join, inputs: [r, input]}",
            "{kind: global_avgpool, name: gap}",
            "{kind: dense, name: fc, units: 3}")


def test_a_layer_without_inputs_takes_the_previous_one():
    spec = make(*RESIDUAL)
    assert resolved_inputs(spec.layers) == [
        (IMAGE_INPUT,), ("a",), ("r", IMAGE_INPUT), ("join",), ("gap",)]
    rows = spec.table.rows
    assert [row.inputs for row in rows] == resolved_inputs(spec.layers)
    assert rows[2].input_shapes == ((6, 6, 2), (6, 6, 2)) and rows[2].input == (6, 6, 2)
    assert not is_stack(spec.layers) and not spec.table.is_stack


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_stack_is_still_a_stack(path):
    spec = load_spec(path)
    assert is_stack(spec.layers) and spec.table.is_stack
    assert all(layer.inputs is None for layer in spec.layers)
    assert "inputs" not in str(spec.architecture())


def test_naming_the_previous_layer_changes_nothing():
    """Weights, fingerprint and initial values of a stack are the same however it is
    written: implicitly, or with every input named."""
    text = (SPECS / "mnist.yaml").read_text()
    plain = loads_spec(text)
    named = loads_spec(text.replace("name: pool1,", "name: pool1, inputs: [conv1],")
                       .replace("{kind: flatten, name: flatten}",
                                "{kind: flatten, name: flatten, inputs: [relu2]}"))
    assert named.layers[1].inputs == ["conv1"] and named.layers[6].inputs == ["relu2"]
    assert is_stack(named.layers)
    assert named.architecture_hash() == plain.architecture_hash() == "f4286bc937d7aa3b"
    first, second = init_weights(plain), init_weights(named)
    assert list(first) == list(second)
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_connections_are_part_of_the_fingerprint(tmp_path):
    spec = make(*RESIDUAL)
    print_ = spec.architecture()
    assert print_["layers"][2]["inputs"] == [1, "input"]  # by position, not by name
    assert all("inputs" not in layer for i, layer in enumerate(print_["layers"]) if i != 2)
    renamed = make(*(layer.replace("name: r}", "name: act}").replace("[r,", "[act,")
                     for layer in RESIDUAL))
    assert renamed.architecture_hash() == spec.architecture_hash()  # names without weights
    rewired = make(*(layer.replace("[r, input]", "[a, input]") for layer in RESIDUAL[:3]),
                   "{kind: add, inputs: [join, r]}", *RESIDUAL[3:])
    assert rewired.architecture_hash() != spec.architecture_hash()
    path = save_weights(tmp_path / "w.safetensors", init_weights(spec), spec)
    assert set(load_weights(path, renamed)) == set(init_weights(spec))
    other = make(*(layer.replace("[r, input]", "[input, r]") for layer in RESIDUAL))
    with pytest.raises(Exception, match=r"layer 2 \(join\) inputs is \["):
        load_weights(path, other)


def test_one_output_taken_by_several_layers_and_twice_by_one():
    spec = make("{kind: conv2d, name: a, filters: 2, kernel: 1}",
                "{kind: relu, name: left}",
                "{kind: tanh, name: right, inputs: [a]}",
                "{kind: add, name: s, inputs: [left, right, a, a]}",
                "{kind: concat, name: c, inputs: [s, input, s]}",
                "{kind: flatten}", "{kind: dense, units: 3}")
    assert spec.table["c"].output == (6, 6, 6)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 2)).astype(np.float32)
    out = ReferenceModel(spec).activations(x)
    a = out["a"].astype(np.float64)
    s = np.maximum(a, 0) + np.tanh(a) + 2 * a
    np.testing.assert_allclose(out["s"], s, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["c"], np.concatenate([s, x, s], -1), rtol=1e-6, atol=1e-6)


def test_merges_have_no_weights_and_no_macs_and_flat_concat_joins_vectors():
    spec = make("{kind: flatten}", "{kind: dense, name: u, units: 4}",
                "{kind: dense, name: v, units: 5, inputs: [flatten1]}",
                "{kind: concat, name: uv, inputs: [u, v, flatten1]}",
                "{kind: dense, units: 3}")
    row = spec.table["uv"]
    assert (row.output, row.params, row.macs, row.slots) == ((4 + 5 + 72,), 0, 0, ())


@pytest.mark.parametrize("layers, loc, fragment", [
    (("{kind: relu, inputs: [nope]}",), ("layers", 0, "relu", "inputs", 0),
     "unknown input 'nope'"),
    (("{kind: relu, name: a, inputs: [b]}", "{kind: relu, name: b}"),
     ("layers", 0, "relu", "inputs", 0), "these layers form a cycle: a -> b -> a"),
    (("{kind: relu, name: a}", "{kind: relu, name: b, inputs: [input]}"),
     ("layers", 0, "relu"), "the output of 'a' is never used"),
])
def test_graph_rules_hold_however_a_spec_is_built(layers, loc, fragment):
    data = {"name": "g", "input": {"height": 2, "width": 2, "channels": 1}, "classes": 2,
            "layers": [*(loads_yaml(layer) for layer in layers), {"kind": "flatten"},
                       {"kind": "dense", "units": 2}]}
    with pytest.raises(ValidationError) as info:
        Spec.model_validate(copy.deepcopy(data))
    (error,) = info.value.errors()
    assert error["loc"] == loc and fragment in error["msg"]


def loads_yaml(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)
