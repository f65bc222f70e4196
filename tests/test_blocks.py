"""Reusable blocks: plain data expanded once, while the spec validates, into plain layers with
prefixed names; the expanded spec round-trips and is the network written out by hand.
(Every located error has a fixture in tests/specs/invalid/block_*.yaml.)"""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import ROOT

from convspec.cli import main
from convspec.errors import SpecError
from convspec.specification import Spec, load_spec, loads_spec, validate_spec
from convspec.specification.blocks import Origin

RESIDUAL = """
name: blocks
input: {height: 6, width: 6, channels: 2}
classes: 3
blocks:
  res:
    params: [filters, stride]
    defaults: {stride: 1}
    layers:
      - {kind: conv2d, name: conv, filters: $filters, kernel: 3, stride: $stride,
         padding: same}
      - {kind: relu}
      - {kind: conv2d, name: proj, inputs: [input], filters: $filters, kernel: 1,
         stride: $stride}
      - {kind: add, inputs: [relu1, proj]}
layers:
  - {kind: conv2d, filters: 2, kernel: 1}
  - {kind: block, block: res, name: first, filters: 4}
  - {kind: block, block: res, filters: 4, stride: 2}
  - {kind: block, block: res, filters: 4, stride: 2, inputs: [first]}
  - {kind: concat, inputs: [res2, res1]}
  - {kind: flatten}
  - {kind: dense, units: 3}
"""

# the same network written out by hand
EXPANDED = """
name: blocks
input: {height: 6, width: 6, channels: 2}
classes: 3
layers:
  - {kind: conv2d, name: conv1, filters: 2, kernel: 1}
  - {kind: conv2d, name: first_conv, filters: 4, kernel: 3, padding: same}
  - {kind: relu, name: first_relu1}
  - {kind: conv2d, name: first_proj, inputs: [conv1], filters: 4, kernel: 1}
  - {kind: add, name: first_add1, inputs: [first_relu1, first_proj]}
  - {kind: conv2d, name: res1_conv, filters: 4, kernel: 3, stride: 2, padding: same}
  - {kind: relu, name: res1_relu1}
  - {kind: conv2d, name: res1_proj, inputs: [first_add1], filters: 4, kernel: 1, stride: 2}
  - {kind: add, name: res1_add1, inputs: [res1_relu1, res1_proj]}
  - {kind: conv2d, name: res2_conv, inputs: [first_add1], filters: 4, kernel: 3,
     padding: same, stride: 2}
  - {kind: relu, name: res2_relu1}
  - {kind: conv2d, name: res2_proj, inputs: [first_add1], filters: 4, kernel: 1, stride: 2}
  - {kind: add, name: res2_add1, inputs: [res2_relu1, res2_proj]}
  - {kind: concat, name: concat1, inputs: [res2_add1, res1_add1]}
  - {kind: flatten, name: flatten1}
  - {kind: dense, name: fc1, units: 3}
"""


def test_instances_expand_to_prefixed_plain_layers():
    spec = loads_spec(RESIDUAL)
    names = [layer.name for layer in spec.layers]
    assert names == [
        "conv1", "first_conv", "first_relu1", "first_proj", "first_add1",
        "res1_conv", "res1_relu1", "res1_proj", "res1_add1",
        "res2_conv", "res2_relu1", "res2_proj", "res2_add1", "concat1", "flatten1", "fc1"]
    assert all(layer.kind != "block" for layer in spec.layers)
    by_name = {layer.name: layer for layer in spec.layers}
    assert by_name["first_proj"].inputs == ["conv1"]  # 'input': the layer before the instance
    assert by_name["res1_conv"].inputs is None  # takes the previous layer, the block's output
    assert by_name["res1_proj"].inputs == ["first_add1"]
    assert by_name["res2_conv"].inputs == ["first_add1"]  # the instance's own inputs
    assert by_name["concat1"].inputs == ["res2_add1", "res1_add1"]  # instances by name
    assert (by_name["first_conv"].stride, by_name["res1_conv"].stride) == ((1, 1), (2, 2))


def test_the_expansion_is_the_network_written_by_hand():
    spec = loads_spec(RESIDUAL)
    by_hand = loads_spec(EXPANDED)
    assert spec.layers == by_hand.layers
    assert spec.architecture_hash() == by_hand.architecture_hash()
    assert spec.table.params == by_hand.table.params


def test_to_dict_round_trips_with_the_layers_expanded():
    spec = loads_spec(RESIDUAL)
    data = spec.to_dict()
    assert "block" not in {layer["kind"] for layer in data["layers"]}
    assert data["blocks"]["res"]["params"] == ["filters", "stride"]  # definitions kept
    again = validate_spec(copy.deepcopy(data))
    assert again == spec and again.to_dict() == data
    assert loads_spec(yaml.safe_dump(data, sort_keys=False)) == spec
    assert Spec.model_validate(data).architecture_hash() == spec.architecture_hash()
    assert "blocks" not in load_spec(ROOT / "specs" / "mnist.yaml").to_dict()


def test_origins_say_where_each_layer_was_written():
    spec = loads_spec(RESIDUAL)
    assert spec.origins[0] == Origin(("layers", 0))
    assert spec.origins[3] == Origin(("blocks", "res", "layers", 2), "first", ("layers", 1))
    assert spec.origins[3].where == "blocks.res.layers[2] of instance first (layers[1])"
    assert spec.origins[-1] == Origin(("layers", 6))


def test_automatic_names_never_clash_with_expanded_ones():
    spec = loads_spec("""
name: clash
input: {height: 4, width: 4, channels: 1}
classes: 2
blocks:
  leaky:
    layers: [{kind: relu}]
layers:
  - {kind: block, block: leaky}
  - {kind: leaky_relu}
  - {kind: leaky_relu}
  - {kind: flatten}
  - {kind: dense, units: 2}
""")
    # the instance leaky1 expands to leaky1_relu1; top-level leaky_relu layers count on
    assert [layer.name for layer in spec.layers[:3]] == [
        "leaky1_relu1", "leaky_relu1", "leaky_relu2"]


def test_shapes_shows_the_expanded_layers(capsys, tmp_path):
    path = tmp_path / "blocks.yaml"
    path.write_text(RESIDUAL)
    assert main(["shapes", str(path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[3:] if line.strip()}
    assert "first_proj" in rows and rows["first_proj"].rstrip().endswith("conv1")
    assert rows["res2_conv"].rstrip().endswith("first_add1")
    assert "inputs" in out.splitlines()[1]


def test_the_readme_example_is_a_valid_residual_network():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```yaml\nblocks:\n") + len("```yaml\n")
    example = text[start:text.index("```", start)]
    spec = loads_spec("name: readme\ninput: {height: 28, width: 28, channels: 1}\n"
                      "classes: 10\n" + example)
    assert spec.table["both"].inputs == ("res2_out", "res2_shortcut")
    assert spec.table["both"].output == (14, 14, 64)
    conv = example.index("{kind: conv2d, name: shortcut")
    broken = (example[:conv] + "{kind: identity, name: shortcut, inputs: [input]}\n"
              + example[example.index("- {kind: add", conv) - 6:])
    with pytest.raises(SpecError, match="add needs inputs of one shape, but res2_bn2 is "
                                        "14x14x32 and res2_shortcut is 28x28x16"):
        loads_spec("name: readme\ninput: {height: 28, width: 28, channels: 1}\n"
                   "classes: 10\n" + broken)
