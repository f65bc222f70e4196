"""Shape inference: golden figures, padding arithmetic, and specs whose shapes cannot work."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from convspec.errors import SpecError
from convspec.shapes import (
    LayerShape,
    ShapeError,
    ShapeTable,
    effective_kernel,
    format_shape,
    infer_shapes,
    output_size,
)
from convspec.specification import load_spec, loads_spec, shapes
from convspec.summary import format_table

ROOT = Path(__file__).resolve().parents[1]
VALID = ROOT / "tests" / "specs" / "valid"

HEAD = """\
name: t
input: {height: %d, width: %d, channels: %d}
classes: 3
layers:
"""


def make(*layers: str, size: tuple[int, int, int] = (8, 8, 1), with_shapes: bool = False):
    text = HEAD % size + "".join(f"  - {layer}\n" for layer in layers)
    return loads_spec(text, source="t.yaml", with_shapes=with_shapes)


# --------------------------------------------------------------------------- mnist golden


def test_mnist_golden_figures():
    table = infer_shapes(load_spec(ROOT / "specs" / "mnist.yaml"))
    assert table.input == (28, 28, 1)
    got = [(r.name, r.kind, r.input, r.output, r.params, r.macs) for r in table.rows]
    assert got == [
        ("conv1", "conv2d", (28, 28, 1), (28, 28, 16), 416, 313_600),
        ("pool1", "maxpool", (28, 28, 16), (14, 14, 16), 0, 0),
        ("relu1", "relu", (14, 14, 16), (14, 14, 16), 0, 0),
        ("conv2", "conv2d", (14, 14, 16), (14, 14, 36), 14_436, 2_822_400),
        ("pool2", "maxpool", (14, 14, 36), (7, 7, 36), 0, 0),
        ("relu2", "relu", (7, 7, 36), (7, 7, 36), 0, 0),
        ("flatten", "flatten", (7, 7, 36), (1764,), 0, 0),
        ("fc1", "dense", (1764,), (128,), 225_920, 225_792),
        ("fc2", "dense", (128,), (10,), 1_290, 1_280),
    ]
    assert table.params == 242_062
    assert table.macs == 3_363_072
    assert table.flops == 2 * 3_363_072
    assert table["conv1"].pads == ((2, 2), (2, 2))
    assert table["pool1"].pads == ((0, 0), (0, 0))
    assert table["pool2"].pads == ((0, 0), (0, 0))
    assert table["fc1"].pads is None
    assert [r.index for r in table.rows] == list(range(9))
    with pytest.raises(KeyError):
        table["nope"]


def test_other_shipped_specs():
    lenet = infer_shapes(load_spec(ROOT / "specs" / "zoo" / "lenet5.yaml"))
    assert [r.output for r in lenet.rows] == [
        (28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (400,), (120,), (84,), (10,),
    ]
    assert lenet["c1"].pads == ((2, 2), (2, 2))
    assert lenet.params == 156 + 2416 + 48_120 + 10_164 + 850
    fashion = infer_shapes(load_spec(ROOT / "specs" / "fashion_mnist.yaml"))
    assert fashion.params == 242_062
    assert fashion.macs == 3_363_072


# --------------------------------------------------------------------------- output_size


def reference(size: int, kernel: int, stride: int, padding, dilation: int = 1):
    """Independent formulas (as written in the TensorFlow documentation)."""
    k_eff = (kernel - 1) * dilation + 1
    if padding == "same":
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + k_eff - size, 0)
        return out, total // 2, total - total // 2
    if padding == "valid":
        return max(math.ceil((size - k_eff + 1) / stride), 0), 0, 0
    padded = size + 2 * padding
    return (max(math.floor((padded - k_eff) / stride) + 1, 0), padding, padding)


def windows(padded: int, k_eff: int, stride: int) -> int:
    """Brute force: count the window positions that fit."""
    return sum(1 for start in range(0, padded, stride) if start + k_eff <= padded)


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, expected", [
    # SAME: ceil(in / stride), smaller half of the padding before
    (28, 5, 1, "same", 1, (28, 2, 2)),
    (28, 2, 2, "same", 1, (14, 0, 0)),
    (14, 2, 2, "same", 1, (7, 0, 0)),
    (7, 2, 2, "same", 1, (4, 0, 1)),  # odd size: the extra row goes after
    (8, 4, 1, "same", 1, (8, 1, 2)),  # even kernel: 1 before, 2 after
    (9, 3, 2, "same", 1, (5, 1, 1)),
    (10, 3, 3, "same", 1, (4, 1, 1)),
    (11, 3, 3, "same", 1, (4, 0, 1)),
    (12, 3, 3, "same", 1, (4, 0, 0)),
    (5, 1, 1, "same", 1, (5, 0, 0)),
    (4, 5, 1, "same", 1, (4, 2, 2)),  # kernel larger than the input still works
    (11, 3, 1, "same", 2, (11, 2, 2)),  # dilated 3x3 covers 5
    (8, 2, 3, "same", 1, (3, 0, 0)),  # stride larger than the window: no padding needed
    (1, 3, 2, "same", 1, (1, 1, 1)),
    # VALID: ceil((in - k_eff + 1) / stride)
    (28, 5, 1, "valid", 1, (24, 0, 0)),
    (7, 2, 2, "valid", 1, (3, 0, 0)),
    (10, 3, 3, "valid", 1, (3, 0, 0)),
    (9, 3, 2, "valid", 1, (4, 0, 0)),
    (11, 3, 1, "valid", 2, (7, 0, 0)),
    (5, 5, 1, "valid", 1, (1, 0, 0)),
    (4, 5, 1, "valid", 1, (0, 0, 0)),  # does not fit
    (6, 3, 1, "valid", 3, (0, 0, 0)),  # dilated kernel does not fit
    # explicit p: floor((in + 2p - k_eff) / stride) + 1
    (6, 3, 1, 2, 1, (8, 2, 2)),
    (6, 3, 2, 1, 1, (3, 1, 1)),
    (28, 5, 1, 2, 1, (28, 2, 2)),
    (5, 3, 1, 0, 1, (3, 0, 0)),
    (7, 3, 2, 1, 2, (3, 1, 1)),
    (4, 2, 2, 1, 1, (3, 1, 1)),
    (2, 5, 1, 1, 1, (0, 1, 1)),  # padded 4 < 5: does not fit
])
def test_output_size_cases(size, kernel, stride, padding, dilation, expected):
    assert output_size(size, kernel, stride, padding, dilation) == expected
    assert reference(size, kernel, stride, padding, dilation)[0] == expected[0]


def test_output_size_agrees_with_formulas_and_brute_force():
    checked = 0
    for size in range(1, 14):
        for kernel in range(1, 6):
            for stride in range(1, 4):
                for dilation in (1, 2, 3):
                    k_eff = (kernel - 1) * dilation + 1
                    for padding in ("same", "valid", 0, 1, 2):
                        got = output_size(size, kernel, stride, padding, dilation)
                        assert got == reference(size, kernel, stride, padding, dilation), (
                            size, kernel, stride, padding, dilation)
                        out, before, after = got
                        assert before >= 0 and after >= 0
                        assert out == windows(size + before + after, k_eff, stride)
                        if padding == "same":
                            assert out == math.ceil(size / stride)
                            assert after - before in (0, 1)
                        checked += 1
    assert checked == 13 * 5 * 3 * 3 * 5


def test_output_size_uses_exact_integer_arithmetic():
    big = 10**400  # far beyond float range
    assert output_size(big, 2, 2, "same") == (big // 2, 0, 0)
    assert output_size(big + 1, 3, 2, "valid") == (big // 2, 0, 0)
    assert output_size(2**60 + 1, 1, 2, "same")[0] == 2**59 + 1


@pytest.mark.parametrize("kernel, dilation, expected", [(1, 5, 1), (3, 1, 3), (3, 2, 5),
                                                         (5, 3, 13), (2, 4, 5)])
def test_effective_kernel(kernel, dilation, expected):
    assert effective_kernel(kernel, dilation) == expected


def test_format_shape():
    assert format_shape((28, 28, 1)) == "28x28x1"
    assert format_shape((1764,)) == "1764"


# --------------------------------------------------------------------------- layers


def test_non_square_kernels_strides_and_inputs():
    spec = make(
        "{kind: conv2d, filters: 2, kernel: [3, 5], stride: [1, 2], padding: same}",
        "{kind: maxpool, size: [2, 1], stride: [2, 1]}",
        "{kind: conv2d, filters: 4, kernel: [5, 3], padding: valid}",
        "{kind: avgpool, size: [3, 2], padding: same}",
        "{kind: conv2d, filters: 1, kernel: 1, padding: [1, 0]}",
        "{kind: flatten}",
        "{kind: dense, units: 3}",
        size=(20, 16, 1),
    )
    table = infer_shapes(spec)
    outputs = [r.output for r in table.rows]
    assert outputs == [(20, 8, 2), (10, 8, 2), (6, 6, 4), (2, 3, 4), (4, 3, 1), (12,), (3,)]
    assert table.rows[0].pads == ((1, 1), (1, 2))
    assert table.rows[1].pads == ((0, 0), (0, 0))
    assert table.rows[3].pads == ((0, 0), (0, 0))  # 6 = 2 * 3 rows, 6 = 3 * 2 columns
    assert table.rows[4].pads == ((1, 1), (0, 0))
    assert table.rows[0].params == 3 * 5 * 1 * 2 + 2
    assert table.rows[0].macs == 20 * 8 * 2 * 15
    assert table.rows[2].params == 5 * 3 * 2 * 4 + 4


def test_pool_stride_defaults_to_the_window():
    table = infer_shapes(make("{kind: maxpool, size: 3}", "{kind: avgpool, size: 2, stride: 1}",
                              "{kind: flatten}", "{kind: dense, units: 3}", size=(9, 9, 2)))
    assert [r.output for r in table.rows[:2]] == [(3, 3, 2), (2, 2, 2)]


def test_parameter_counts_per_kind():
    table = infer_shapes(make(
        "{kind: conv2d, filters: 4, kernel: 3, bias: false, padding: same}",
        "{kind: batchnorm}",
        "{kind: leaky_relu}", "{kind: tanh}", "{kind: sigmoid}", "{kind: relu}",
        "{kind: dropout, rate: 0.1}",
        "{kind: flatten}",
        "{kind: dense, units: 5, bias: false}",
        "{kind: batchnorm}",
        "{kind: softmax}",
        "{kind: dense, units: 3}",
        size=(6, 5, 2),
    ))
    params = {r.name: r.params for r in table.rows}
    assert params == {
        "conv1": 3 * 3 * 2 * 4, "bn1": 4 * 4, "leaky_relu1": 0, "tanh1": 0, "sigmoid1": 0,
        "relu1": 0, "dropout1": 0, "flatten1": 0, "fc1": 120 * 5, "bn2": 4 * 5,
        "softmax1": 0, "fc2": 5 * 3 + 3,
    }
    assert table.rows[0].macs == 6 * 5 * 4 * (3 * 3 * 2)
    assert table["fc1"].macs == 600
    assert all(r.input == r.output for r in table.rows if r.kind in
               ("batchnorm", "leaky_relu", "tanh", "sigmoid", "relu", "dropout", "softmax"))


# Output shapes of the awkward valid fixtures, worked out by hand.
VALID_GOLDEN = {
    # graphs and the kinds they brought: conv 216 + bn 32 + dw 72 + bn 32 + 1x1 96
    # + dw (3*2*12*2 + 24) 168 + grouped 1x1 (8*6 + 6) 54 + dense 42
    "depthwise_separable": ([(6, 6, 8)] * 6 + [(6, 6, 12), (2, 3, 24), (2, 3, 6), (6,), (6,)],
                            712),
    # b1 8 + b3 84 + conv1 1,100 + fc_a 1,062 + fc_b 1,062 + fc1 65
    "branches_concat": ([(8, 8, 2), (8, 8, 3), (8, 8, 3)] + [(8, 8, 11)] * 4
                        + [(4, 4, 11), (176,), (6,), (6,), (12,), (5,)], 3381),
    # stem 76 + res1 (144+16+144+16+20) + res2 (288+32+576+32+40) + residual1
    # (576+32+576+32+72) + fc 36
    "residual_block": ([(10, 10, 4)] * 9 + [(5, 5, 8)] * 16 + [(8,), (4,)], 2708),
    "odd_same_pool": ([(7, 7, 4), (4, 4, 4), (64,), (3,)], 235),
    "even_kernel_same": ([(8, 8, 3), (8, 8, 3), (4, 4, 3), (48,), (4,)], 247),
    "stride2_conv": ([(5, 5, 3), (2, 2, 4), (16,), (3,)], 193),
    "valid_conv": ([(10, 10, 3), (5, 5, 3), (2, 2, 3), (12,), (3,)], 96),
    "explicit_padding": ([(8, 6, 2), (8, 6, 2), (4, 3, 3), (3, 2, 3), (18,), (3,)], 134),
    "dilated_conv": ([(7, 7, 2), (7, 7, 2), (98,), (3,)], 355),
    "avgpool_same_odd": ([(5, 5, 2), (5, 5, 3), (3, 3, 3), (27,), (3,)], 93),
    "dense_activations": ([(16,), (8,), (7,), (6,), (5,), (5,), (5,), (5,), (4,), (4,), (3,)],
                          351),
    "dropout_batchnorm": ([(6, 6, 3)] * 4 + [(3, 3, 3), (27,)] + [(8,)] * 4 + [(3,)], 322),
    "conv_no_bias": ([(4, 4, 2), (32,), (4,), (3,)], 161),
    "rgb_input": ([(12, 12, 4), (6, 6, 4), (6, 6, 4), (3, 3, 4), (36,), (5,)], 445),
    "non_square": ([(20, 8, 2), (10, 8, 2), (6, 6, 2), (72,), (3,)], 313),
}


def test_every_valid_fixture_has_golden_shapes():
    assert {p.stem for p in VALID.glob("*.yaml")} == set(VALID_GOLDEN)


@pytest.mark.parametrize("name", sorted(VALID_GOLDEN))
def test_valid_fixture_shapes(name):
    outputs, params = VALID_GOLDEN[name]
    table = infer_shapes(load_spec(VALID / f"{name}.yaml"))
    assert [r.output for r in table.rows] == outputs
    assert table.params == params


def test_awkward_padding_in_valid_fixtures():
    assert infer_shapes(load_spec(VALID / "odd_same_pool.yaml"))["pool1"].pads == ((0, 1), (0, 1))
    assert infer_shapes(load_spec(VALID / "even_kernel_same.yaml"))["conv1"].pads == (
        (1, 2), (1, 2))
    assert infer_shapes(load_spec(VALID / "explicit_padding.yaml"))["conv1"].pads == (
        (2, 2), (1, 1))
    assert infer_shapes(load_spec(VALID / "dilated_conv.yaml"))["conv2"].pads == ((2, 2), (1, 1))
    assert infer_shapes(load_spec(VALID / "avgpool_same_odd.yaml"))["pool2"].pads == (
        (1, 1), (1, 1))


# --------------------------------------------------------------------------- impossible


@pytest.mark.parametrize("layers, size, index, rows, fragment", [
    # kernel larger than a VALID input
    (["{kind: conv2d, filters: 2, kernel: 5}"], (4, 4, 1), 0, 0,
     "kernel 5x5 does not fit the 4x4x1 input with padding 'valid'"),
    (["{kind: conv2d, filters: 2, kernel: [3, 5]}"], (4, 4, 1), 0, 0,
     "kernel 3x5 does not fit"),
    (["{kind: conv2d, filters: 2, kernel: 3, dilation: 3}"], (6, 6, 1), 0, 0,
     "kernel 7x7 does not fit"),
    (["{kind: conv2d, filters: 2, kernel: 5, padding: 1}"], (2, 2, 1), 0, 0,
     "with padding [1, 1]"),
    # dense before flatten
    (["{kind: relu}", "{kind: dense, units: 3}"], (4, 4, 1), 1, 1,
     "dense needs a flat input but gets 4x4x1; add '- kind: flatten' before it"),
    # conv / pool after flatten
    (["{kind: flatten}", "{kind: conv2d, filters: 1, kernel: 1}"], (4, 4, 2), 1, 1,
     "conv2d needs an HxWxC input but gets a flat vector of 32"),
    (["{kind: flatten}", "{kind: maxpool}"], (4, 4, 2), 1, 1,
     "maxpool needs an HxWxC input but gets a flat vector of 32"),
    # flatten twice
    (["{kind: flatten}", "{kind: dropout, rate: 0.1}", "{kind: flatten}"], (2, 3, 1), 2, 2,
     "flatten appears twice?"),
    # spatial size reaching 0 through pooling
    (["{kind: maxpool}", "{kind: maxpool}", "{kind: maxpool}"], (5, 5, 1), 2, 2,
     "window 2x2 does not fit the 1x1x1 input with padding 'valid'"),
    (["{kind: avgpool, size: [1, 3]}"], (4, 2, 1), 0, 0, "window 1x3 does not fit"),
    # not ending in `classes` outputs
    (["{kind: flatten}", "{kind: dense, units: 4}"], (4, 4, 1), 1, 2,
     "the network ends with output 4 but classes is 3"),
    (["{kind: conv2d, filters: 3, kernel: 4}"], (4, 4, 1), 0, 1,
     "the network ends with output 1x1x3 but classes is 3"),
    (["{kind: relu}"], (1, 1, 3), 0, 1, "the network ends with output 1x1x3"),
    # final softmax
    (["{kind: flatten}", "{kind: dense, units: 3}", "{kind: softmax}"], (4, 4, 1), 2, 3,
     "remove the final softmax"),
    (["{kind: flatten}", "{kind: dense, units: 3, activation: softmax}"], (4, 4, 1), 1, 2,
     "remove the final softmax"),
])
def test_impossible_specs(layers, size, index, rows, fragment):
    spec = make(*layers, size=size)
    with pytest.raises(ShapeError) as info:
        infer_shapes(spec)
    assert info.value.index == index
    assert len(info.value.rows) == rows
    assert fragment in info.value.message
    # the same problem through the loader: located at the layer, with the partial rows
    text = HEAD % size + "".join(f"  - {layer}\n" for layer in layers)
    with pytest.raises(SpecError) as located:
        loads_spec(text, source="t.yaml")
    (item,) = located.value.items
    layer = spec.layers[index]
    assert item.path == f"layers[{index}].{layer.kind} ({layer.name})"
    assert (item.line, item.column) == (5 + index, 5)
    assert fragment in item.message
    assert str(located.value).startswith(f"t.yaml:{5 + index}:5: layers[{index}].")
    assert len(located.value.partial_rows) == rows


def test_softmax_in_the_middle_is_fine():
    table = infer_shapes(make("{kind: flatten}", "{kind: dense, units: 4, activation: softmax}",
                              "{kind: softmax}", "{kind: dense, units: 3}", size=(2, 2, 1)))
    assert table.rows[-1].output == (3,)


def test_shapes_without_a_locator_gives_a_path_but_no_line():
    spec = make("{kind: dense, units: 3}")
    with pytest.raises(SpecError) as info:
        shapes(spec, source="x")
    (item,) = info.value.items
    assert item.line is None
    assert str(info.value).startswith("x: layers[0].dense (fc1): dense needs a flat input")


def test_the_table_is_computed_once_per_spec(monkeypatch):
    import convspec.shapes as shapes_module
    from convspec.backends.reference import ReferenceModel
    from convspec.weights import init_weights, weight_shapes

    calls = []
    compute = shapes_module.compute_table
    monkeypatch.setattr(shapes_module, "compute_table", lambda s: calls.append(s) or compute(s))
    spec = load_spec(ROOT / "specs" / "mnist.yaml")
    table = spec.table
    assert infer_shapes(spec) is table and spec.table is table
    weight_shapes(spec), init_weights(spec), spec.architecture()
    ReferenceModel(spec).predict(np.zeros((1, 28, 28, 1), np.float32))
    assert calls == [spec]


def test_trainable_and_non_trainable_totals():
    table = infer_shapes(load_spec(VALID / "dropout_batchnorm.yaml"))
    stats = sum(r.params // 2 for r in table.rows if r.kind == "batchnorm")
    assert stats > 0
    assert (table.trainable_params, table.non_trainable_params) == (table.params - stats, stats)
    assert infer_shapes(load_spec(ROOT / "specs" / "mnist.yaml")).non_trainable_params == 0
    d = table.to_dict()
    assert (d["trainable_params"], d["non_trainable_params"]) == (table.params - stats, stats)
    assert [name for name in table.weights if name.startswith("bn1/")] == [
        "bn1/gamma", "bn1/beta", "bn1/moving_mean", "bn1/moving_variance"]


# --------------------------------------------------------------------------- output


def small_table() -> ShapeTable:
    return infer_shapes(make("{kind: conv2d, filters: 2, kernel: 3, padding: same}",
                             "{kind: flatten}", "{kind: dense, units: 3}", size=(4, 4, 1)))


def test_format_table_exact():
    assert format_table(small_table()) == "\n".join([
        "layer     kind     output  params  MACs",
        "--------  -------  ------  ------  ----",
        "input              4x4x1",
        "conv1     conv2d   4x4x2       20   288",
        "flatten1  flatten  32           0     0",
        "fc1       dense    3           99    96",
        "--------  -------  ------  ------  ----",
        "total                         119   384",
    ])


def test_format_table_without_totals_and_with_thousands():
    text = format_table(small_table(), totals=False)
    assert "total" not in text
    lines = text.splitlines()
    assert len(lines) == 6  # head, rule, input, three layers
    assert [set(line) <= {"-", " "} for line in lines] == [False, True] + [False] * 4
    mnist = format_table(infer_shapes(load_spec(ROOT / "specs" / "mnist.yaml")))
    assert "242,062" in mnist and "3,363,072" in mnist and "2,822,400" in mnist
    assert all(line == line.rstrip() for line in mnist.splitlines())


def test_format_table_of_partial_rows():
    table = ShapeTable(input=(4, 4, 1), rows=[
        LayerShape(0, "conv1", "conv2d", (4, 4, 1), (4, 4, 2), 20, 288, ((1, 1), (1, 1)))])
    lines = format_table(table, totals=False).splitlines()
    assert lines[-1].split() == ["conv1", "conv2d", "4x4x2", "20", "288"]


def test_to_dict():
    d = small_table().to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON data
    assert d["input"] == [4, 4, 1]
    assert (d["params"], d["macs"], d["flops"]) == (119, 384, 768)
    assert d["layers"][0] == {
        "index": 0, "name": "conv1", "kind": "conv2d", "inputs": ["input"], "input": [4, 4, 1],
        "output": [4, 4, 2], "params": 20, "macs": 288, "pads": [[1, 1], [1, 1]],
    }
    assert d["layers"][2]["inputs"] == ["flatten1"]
    assert d["layers"][1]["output"] == [32]
    assert d["layers"][2]["pads"] is None
    assert [layer["name"] for layer in d["layers"]] == ["conv1", "flatten1", "fc1"]
