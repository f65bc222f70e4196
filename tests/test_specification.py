"""The spec language: loading, located errors, names, round trips, the tutorial spec."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from convspec.errors import SpecError
from convspec.specification import LAYER_KINDS, Spec, load_spec, loads_spec, validate_spec
from convspec.specification.load import render_loc
from convspec.specification.messages import describe, suggest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "zoo").glob("*.yaml"))
VALID = sorted((ROOT / "tests" / "specs" / "valid").glob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "specs" / "invalid").glob("*.yaml"))

HEAD = """\
name: t
input: {height: 8, width: 8, channels: 1}
classes: 3
"""
TAIL = """\
  - {kind: flatten}
  - {kind: dense, units: 3}
"""


def spec_text(*layers: str, extra: str = "") -> str:
    """A small valid spec with ``layers`` before the flatten + dense head."""
    return HEAD + "layers:\n" + "".join(f"  - {layer}\n" for layer in layers) + TAIL + extra


def error_of(text: str, source: str = "s.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        loads_spec(text, source=source)
    return info.value


def test_fixture_trees_are_populated():
    assert len(SPECS) >= 3
    assert len(VALID) >= 10
    assert len(INVALID) >= 30


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("path", SPECS + VALID, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_round_trip_through_to_dict(path):
    spec = load_spec(path)
    data = spec.to_dict()
    again = validate_spec(copy.deepcopy(data))
    assert again == spec
    assert again.to_dict() == data
    assert again.architecture_hash() == spec.architecture_hash()
    # and through YAML text, as a user would save it
    assert loads_spec(yaml.safe_dump(data, sort_keys=False)) == spec


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_fixtures_end_with_a_dense_layer_of_classes_units(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    last = spec.layers[-1]
    assert last.kind == "dense"
    assert last.units == spec.classes
    assert last.activation is None


# --------------------------------------------------------------------------- names


def test_automatic_names_follow_the_tutorial():
    spec = loads_spec(spec_text(
        "{kind: conv2d, filters: 2, kernel: 3}",
        "{kind: maxpool}",
        "{kind: relu}",
        "{kind: conv2d, filters: 2, kernel: 1}",
        "{kind: avgpool, size: 1}",
        "{kind: batchnorm}",
        "{kind: dropout, rate: 0.5}",
    ))
    assert [layer.name for layer in spec.layers] == [
        "conv1", "pool1", "relu1", "conv2", "pool2", "bn1", "dropout1", "flatten1", "fc1",
    ]


def test_automatic_names_skip_names_given_by_the_user():
    spec = loads_spec(HEAD + """layers:
  - {kind: conv2d, filters: 2, kernel: 1}
  - {kind: conv2d, filters: 2, kernel: 1, name: conv1}
  - {kind: conv2d, filters: 2, kernel: 1}
  - {kind: conv2d, filters: 2, kernel: 1, name: conv3}
  - {kind: conv2d, filters: 2, kernel: 1}
  - {kind: flatten}
  - {kind: dense, units: 4, name: fc2}
  - {kind: dense, units: 3}
""")
    assert [layer.name for layer in spec.layers] == [
        "conv2", "conv1", "conv4", "conv3", "conv5", "flatten1", "fc2", "fc1",
    ]
    assert spec.layer("conv4") is spec.layers[2]
    with pytest.raises(KeyError):
        spec.layer("nope")


def test_every_layer_kind_has_a_name_prefix():
    from convspec.layers import layer_class

    prefixes = {kind: layer_class(kind).name_prefix for kind in LAYER_KINDS}
    assert all(isinstance(p, str) and p.isidentifier() for p in prefixes.values()), prefixes


def test_duplicate_names_are_reported_at_the_second_use():
    text = spec_text("{kind: relu, name: act}", "{kind: tanh, name: act}",
                     "{kind: sigmoid, name: act}")
    error = error_of(text)
    assert [item.line for item in error.items] == [6, 7]
    assert error.items[0].path == "layers[1].tanh.name"
    assert "duplicate layer name 'act' (also layers[0])" in error.items[0].message
    assert "duplicate layer name 'act' (also layers[0])" in error.items[1].message


TWO_DENSE = {"name": "x", "input": {"height": 2, "width": 2, "channels": 1}, "classes": 2,
             "layers": [{"kind": "flatten"}, {"kind": "dense", "units": 3},
                        {"kind": "dense", "units": 2}]}


@pytest.mark.parametrize("build", [Spec.model_validate, lambda data: Spec(**data),
                                   lambda data: Spec.model_validate_json(json.dumps(data))],
                         ids=["model_validate", "constructor", "model_validate_json"])
def test_every_spec_has_its_names_however_it_is_built(build):
    from convspec.weights import weight_shapes

    spec = build(copy.deepcopy(TWO_DENSE))
    assert [layer.name for layer in spec.layers] == ["flatten1", "fc1", "fc2"]
    assert list(weight_shapes(spec)) == ["fc1/kernel", "fc1/bias", "fc2/kernel", "fc2/bias"]


def test_duplicate_names_are_refused_by_the_model_itself():
    data = copy.deepcopy(TWO_DENSE)
    data["layers"][1]["name"] = data["layers"][2]["name"] = "hidden"
    with pytest.raises(ValidationError) as info:
        Spec.model_validate(data)
    (error,) = info.value.errors()
    assert error["loc"] == ("layers", 2, "dense", "name")
    assert "duplicate layer name 'hidden' (also layers[1])" in error["msg"]


def test_user_name_equal_to_an_automatic_one_is_not_a_duplicate():
    spec = loads_spec(spec_text("{kind: relu}", "{kind: relu, name: relu1}"))
    assert [layer.name for layer in spec.layers[:2]] == ["relu2", "relu1"]


# --------------------------------------------------------------------------- YAML safety


def test_python_tags_are_refused():
    error = error_of("name: !!python/object/apply:os.system ['echo pwned']\n")
    assert len(error.items) == 1
    item = error.items[0]
    assert (item.line, item.column) == (1, 7)
    assert "no tags like !!python" in item.message


def test_python_name_tag_is_refused_too():
    error = error_of("a: !!python/name:os.system\n")
    assert "could not determine a constructor" in error.items[0].message


def test_duplicate_keys_name_both_lines():
    text = spec_text() + "train:\n  batch_size: 32\n  seed: 1\n  batch_size: 64\n"
    error = error_of(text)
    assert str(error) == "s.yaml:10:3: duplicate key 'batch_size' (first given on line 8)"


def test_duplicate_keys_in_a_flow_mapping():
    error = error_of(spec_text("{kind: conv2d, filters: 2, filters: 3, kernel: 1}"))
    assert str(error) == "s.yaml:5:32: duplicate key 'filters' (first given on line 5)"


@pytest.mark.parametrize("written, value", [
    ("1e-4", 1e-4), ("1.0e-4", 1e-4), ("1E-4", 1e-4), ("2e3", 2000.0), ("1.5e+2", 150.0),
    ("0.001", 0.001),
])
def test_exponent_notation_is_a_float(written, value):
    spec = loads_spec(spec_text(extra=f"train:\n  optimizer: {{kind: adam, learning_rate: "
                                      f"{written}}}\n"), with_shapes=False)
    lr = spec.train.optimizer.learning_rate
    assert isinstance(lr, float)
    assert lr == pytest.approx(value)


def test_integers_stay_integers():
    spec = loads_spec(spec_text(extra="train: {batch_size: 1_000}\n"))
    assert spec.train.batch_size == 1000


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "\n\n# x\n"])
def test_empty_file(text):
    error = error_of(text)
    assert str(error) == ("s.yaml:1:1: the file is empty; a spec is a mapping with name, input, "
                          "classes and layers")


@pytest.mark.parametrize("text, line", [
    ("- a\n- b\n", 1), ("just text\n", 1), ("42\n", 1), ("# c\n\n[1, 2]\n", 3),
])
def test_top_level_must_be_a_mapping(text, line):
    error = error_of(text)
    assert len(error.items) == 1
    assert error.items[0].line == line
    assert error.items[0].message == ("a spec must be a mapping with name, input, classes and "
                                      "layers")


def test_syntax_error_is_located():
    text = "name: t\ninput: {height: 8, width: 8\nclasses: 3\n"
    error = error_of(text)
    assert str(error) == "s.yaml:3:8: invalid YAML: expected ',' or '}', but got ':'"


def test_bad_indentation_is_located():
    error = error_of("name: t\n  classes: 3\n")
    item = error.items[0]
    assert (item.line, item.column) == (2, 10)
    assert item.message.startswith("invalid YAML: mapping values are not allowed")


def test_tab_indentation_is_located():
    error = error_of("name: t\n\tclasses: 3\n")
    assert error.items[0].line == 2
    assert "'\\t'" in error.items[0].message


def test_control_characters_are_located():
    error = error_of('name: t\ndescription: "ab\x00"\n')
    assert str(error) == ("s.yaml:2:17: invalid YAML: unacceptable character #x0000: special "
                          "characters are not allowed")


def test_second_document_is_refused():
    error = error_of(spec_text() + "---\nname: other\n")
    assert error.items[0].line == 7
    assert "another document" in error.items[0].message


def test_recursive_alias_is_refused():
    error = error_of(HEAD + "layers: &l [{kind: flatten}, {kind: dense, units: 3}, *l]\n")
    assert len(error.items) == 1
    assert error.items[0].line == 4
    assert "recursive alias" in error.items[0].message


def test_list_as_key_is_refused():
    error = error_of(spec_text() + "? [a, b]\n: c\n")
    assert (error.items[0].line, error.items[0].column) == (7, 3)
    assert "mapping key must be a plain value" in error.items[0].message


@pytest.mark.parametrize("recursion_limit", [None, 20_000])
def test_deep_nesting_is_an_error_not_a_crash(recursion_limit):
    # the limit is convspec's own: other code in the process may raise the interpreter's
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(recursion_limit or old)
    try:
        error = error_of("name: " + "[" * 800 + "]" * 800 + "\n")
    finally:
        sys.setrecursionlimit(old)
    assert str(error) == ("s.yaml:1:106: invalid YAML: nested too deeply (more than 100 levels "
                          "of lists and mappings)")


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: no such file"


def test_undecodable_file(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == (f"{path}:1:1: the file is UTF-16 text; convspec reads UTF-8: "
                               f"save it as UTF-8")


@pytest.mark.parametrize("raw, line, column, byte", [
    (b"name: t\ndescription: caf\xe9 au lait\n", 2, 17, "e9"),  # Latin-1, not UTF-8
    (b"\xef\xbb\xbfname: \xc3\xa9t\xe9\n", 1, 9, "e9"),  # after a BOM and a 2-byte character
    (b"\x80", 1, 1, "80"),
    (b"a: \xe2\x82\n", 1, 4, "e2"),  # a character cut short
])
def test_a_byte_that_is_not_utf8_is_located(tmp_path, raw, line, column, byte):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(raw)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == (f"{path}:{line}:{column}: the file is not UTF-8 text: byte "
                               f"0x{byte} cannot be read here; save the file as UTF-8")


def test_a_utf8_byte_order_mark_is_read_as_nothing(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + spec_text().encode())
    assert load_spec(path).name == "t"
    assert loads_spec("\ufeff" + spec_text()).name == "t"


# --------------------------------------------------------------------------- errors


def test_all_errors_are_reported_at_once_in_file_order():
    text = HEAD.replace("channels: 1", "channels: 0") + """layers:
  - {kind: conv2d, filters: -2, kernel: 3, activaton: relu}
  - {kind: dropout, rate: 2}
  - {kind: flatten}
  - {kind: dense, units: 3}
train: {batch_size: 0}
"""
    error = error_of(text)
    lines = [(item.line, item.column) for item in error.items]
    assert lines == sorted(lines)
    assert [item.path for item in error.items] == [
        "input.channels", "layers[0].conv2d.filters", "layers[0].conv2d.activaton",
        "layers[1].dropout.rate", "train.batch_size",
    ]
    assert all(item.line is not None for item in error.items)


def test_errors_for_data_from_code_have_paths_but_no_lines():
    data = yaml.safe_load(spec_text("{kind: conv2d, filters: 0, kernel: 3}"))
    with pytest.raises(SpecError) as info:
        validate_spec(data, source="code")
    (item,) = info.value.items
    assert item.path == "layers[0].conv2d.filters"
    assert item.line is None
    assert str(info.value) == "code: layers[0].conv2d.filters: must be a positive integer, got 0"


def test_validate_spec_does_not_need_yaml():
    data = {"name": "x", "input": {"height": 4, "width": 4, "channels": 1}, "classes": 2,
            "layers": [{"kind": "flatten"}, {"kind": "dense", "units": 2}]}
    spec = validate_spec(data)
    assert isinstance(spec, Spec)
    assert spec.layers[1].name == "fc1"
    assert spec.train.iterations == 10_000


def test_with_shapes_false_skips_shape_errors():
    text = HEAD + "layers:\n  - {kind: dense, units: 3}\n"
    spec = loads_spec(text, with_shapes=False)
    assert spec.layers[0].units == 3
    with pytest.raises(SpecError, match="add '- kind: flatten' before it"):
        loads_spec(text)


@pytest.mark.parametrize("loc, text", [
    (("layers", 3, "conv2d", "filters"), "layers[3].conv2d.filters"),
    (("train", "optimizer", "adam", "learning_rate"), "train.optimizer.adam.learning_rate"),
    (("classes",), "classes"),
    ((), ""),
])
def test_render_loc(loc, text):
    assert render_loc(loc) == text


def test_suggest():
    assert suggest("kernal", ["kernel", "filters"]) == "; did you mean 'kernel'?"
    assert suggest("zzz", ["kernel", "filters"]) == ""


def test_describe_falls_back_to_pydantic_message():
    error = {"type": "something_new", "loc": ("x",), "msg": "Input is odd", "input": [1]}
    assert describe(error, Spec) == "input is odd, got a list"


def _expected(path: Path) -> list[str]:
    return [line.removeprefix("# expect: ").rstrip("\n").replace("{file}", str(path))
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("# expect: ")]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fixture_reports_exactly_the_expected_errors(path):
    expected = _expected(path)
    assert expected, f"{path.name} has no '# expect:' comment"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.render() == "\n".join(expected)
    assert all(item.line is not None for item in info.value.items)


@pytest.mark.parametrize("fragment", [
    "must be a positive integer",
    "unknown key", "; did you mean",
    "unknown layer kind", "unknown kind",
    "is missing", "(filters, kernel are required here)",
    "missing 'kind'; choose one of: conv2d, maxpool",
    "must be one of",
    "must be 'same', 'valid', a non-negative integer or [height, width]",
    "must be a positive integer or [height, width]",
    "must be at least", "must be less than", "must be greater than",
    "must be an integer", "must be a number", "must be true or false", "must be a string",
    "must be a mapping of keys to values", "must be a list", "must list at least 1 layer(s)",
    "must start with a letter or '_'", "must match", "duplicate layer name",
    "give either 'iterations' or 'epochs'",
    # numbers, and values YAML 1.1 read differently
    "must be a finite number, got", "is too large for a float", "must be at most 2,147,483,647",
    "must be at most 9,223,372,036,854,775,807", "-digit number",
    "is text, not a number (YAML 1.1 read it as the base-60 number",
    "YAML 1.2 has no binary numbers", "write true or false", "put it in quotes",
    "(the value is empty)",
    # shapes
    "does not fit", "needs a flat input", "needs an HxWxC input",
    "the input is already flat", "the network ends with output", "remove the final softmax",
    # graphs and blocks
    "unknown input", "is listed after", "these layers form a cycle", "takes its own output",
    "is never used: no later layer takes it", "add needs inputs of one shape",
    "concat joins inputs along the channel axis", "merges two or more inputs",
    "takes exactly one input", "names the image in inputs", "must list at most",
    "unknown block", "needs a value for", "has no parameter", "is not a parameter of block",
    "no layer of block", "is declared twice", "which is not a parameter",
    "cannot contain a block instance", "(in block instance", "uses it for",
    "is the block's input", "Inside a block, layers take 'input'",
    "layer and block instance names must be unique",
    # YAML
    "duplicate key", "the file is empty", "a spec must be a mapping", "invalid YAML",
    "no tags like !!python", "recursive alias",
])
def test_invalid_fixtures_cover_every_message_kind(fragment):
    assert any(fragment in line for path in INVALID for line in _expected(path)), fragment


# --------------------------------------------------------------------------- hash


MNIST = ROOT / "specs" / "mnist.yaml"


def test_architecture_hash_is_stable():
    spec = load_spec(MNIST)
    assert spec.architecture_hash() == "f4286bc937d7aa3b"
    assert load_spec(MNIST).architecture_hash() == spec.architecture_hash()
    assert len(spec.architecture_hash()) == 16


def test_legacy_hash_is_what_earlier_files_store():
    from convspec.architecture import legacy_hash

    assert legacy_hash(load_spec(MNIST)) == "bce6133852ba5814"


def _variant(old: str, new: str) -> Spec:
    text = MNIST.read_text(encoding="utf-8")
    assert old in text
    return loads_spec(text.replace(old, new, 1))


@pytest.mark.parametrize("old, new", [
    ("filters: 16", "filters: 17"),
    ("kernel: 5, stride: 1, padding: same}", "kernel: 3, stride: 1, padding: same}"),
    ("units: 128, activation: relu", "units: 128, activation: tanh"),
    ("units: 128", "units: 64"),
    ("{kind: relu, name: relu1}", "{kind: tanh, name: relu1}"),
    ("name: fc1", "name: hidden"),
    ("channels: 1", "channels: 3"),
    ("kind: maxpool, name: pool1", "kind: avgpool, name: pool1"),
    ("{kind: dense, name: fc2, units: 10}", "{kind: dense, name: fc2, units: 10, bias: false}"),
    # other pads, the same weight shapes (28 -> 26 -> 13 -> 13 -> 7: still 7x7x36)
    ("filters: 16, kernel: 5, stride: 1, padding: same}", "filters: 16, kernel: 5, padding: 1}"),
])
def test_architecture_hash_changes_with_the_architecture(old, new):
    assert _variant(old, new).architecture_hash() != load_spec(MNIST).architecture_hash()


@pytest.mark.parametrize("old, new", [
    ("batch_size: 64", "batch_size: 32"),
    ("learning_rate: 1.0e-4", "learning_rate: 1.0e-3"),
    ("seed: 0", "seed: 7"),
    ("iterations: 10000", "iterations: 5"),
    ("dataset: mnist", "dataset: fashion-mnist"),
    ("stddev: 0.05", "stddev: 0.1"),
    ("name: mnist", "name: other"),
    ("description: The classic", "description: Not the classic"),
    # an explicit name equal to the automatic one, and a default written out
    ("name: conv1, ", ""),
    ("padding: same}\n  - {kind: relu, name: relu1}", "padding: same}\n  - {kind: relu}"),
    ("kernel: 5, stride: 1, padding: same}", "kernel: [5, 5], stride: [1, 1], padding: SAME}"),
    # the same network: a default left out, a weightless layer's name, equal explicit pads
    ("size: 2, stride: 2, padding: same}", "size: 2, padding: same}"),
    ("{kind: flatten, name: flatten}", "{kind: flatten}"),
    ("{kind: relu, name: relu2}", "{kind: relu, name: act}"),
    ("filters: 16, kernel: 5, stride: 1, padding: same}", "filters: 16, kernel: 5, padding: 2}"),
    ("pool1, size: 2, stride: 2, padding: same}", "pool1, size: 2, padding: [0, 0]}"),
])
def test_architecture_hash_ignores_training_and_spelling(old, new):
    assert _variant(old, new).architecture_hash() == load_spec(MNIST).architecture_hash()


# --------------------------------------------------------------------------- mnist.yaml


def test_mnist_spec_is_the_tutorial_network():
    spec = load_spec(MNIST)
    assert spec.name == "mnist"
    assert (spec.input.height, spec.input.width, spec.input.channels) == (28, 28, 1)
    assert spec.classes == 10
    assert [layer.kind for layer in spec.layers] == [
        "conv2d", "maxpool", "relu", "conv2d", "maxpool", "relu", "flatten", "dense", "dense",
    ]
    assert [layer.name for layer in spec.layers] == [
        "conv1", "pool1", "relu1", "conv2", "pool2", "relu2", "flatten", "fc1", "fc2",
    ]
    conv1, pool1, _, conv2, pool2, _, _, fc1, fc2 = spec.layers
    for conv, filters in ((conv1, 16), (conv2, 36)):
        assert conv.filters == filters
        assert conv.kernel == (5, 5)
        assert conv.stride == (1, 1)
        assert conv.padding == "same"
        assert conv.dilation == (1, 1)
        assert conv.bias is True
        assert conv.activation is None  # ReLU comes after the pool, as in the tutorial
    for pool in (pool1, pool2):
        assert pool.size == (2, 2)
        assert pool.strides == (2, 2)
        assert pool.padding == "same"
    assert (fc1.units, fc1.activation, fc1.bias) == (128, "relu", True)
    assert (fc2.units, fc2.activation, fc2.bias) == (10, None, True)

    weights, biases = spec.init.weights, spec.init.biases
    assert weights.kind == "truncated_normal"
    assert weights.mean == 0.0
    assert weights.stddev == 0.05
    assert biases.kind == "constant"
    assert biases.value == 0.05

    train = spec.train
    assert train.dataset == "mnist"
    opt = train.optimizer
    assert opt.kind == "adam"
    assert opt.learning_rate == 1e-4
    assert (opt.beta1, opt.beta2, opt.epsilon) == (0.9, 0.999, 1e-8)
    assert train.batch_size == 64
    assert train.iterations == 10_000
    assert train.epochs is None
    assert train.eval_batch_size == 256
    assert train.validation_size == 5000
    assert train.seed == 0


def test_defaults_are_the_tutorial_settings():
    spec = loads_spec(spec_text())
    assert spec.init.weights.kind == "truncated_normal"
    assert spec.init.weights.stddev == 0.05
    assert (spec.init.biases.kind, spec.init.biases.value) == ("constant", 0.05)
    opt = spec.train.optimizer
    assert (opt.kind, opt.learning_rate, opt.epsilon) == ("adam", 1e-4, 1e-8)
    assert (spec.train.batch_size, spec.train.iterations) == (64, 10_000)
    assert (spec.train.eval_batch_size, spec.train.validation_size) == (256, 5000)


def test_epochs_replace_the_default_iterations():
    spec = loads_spec(spec_text(extra="train: {epochs: 3}\n"))
    assert (spec.train.epochs, spec.train.iterations) == (3, None)


def test_padding_and_pairs_are_normalised():
    spec = loads_spec(spec_text(
        "{kind: conv2d, filters: 1, kernel: [3, 1], padding: 2}",
        "{kind: conv2d, filters: 1, kernel: 1, padding: [0, 1], stride: [2, 1]}",
        "{kind: maxpool, padding: Valid}",
    ))
    a, b, pool = spec.layers[:3]
    assert (a.kernel, a.padding, a.stride) == ((3, 1), (2, 2), (1, 1))
    assert (b.kernel, b.padding, b.stride) == ((1, 1), (0, 1), (2, 1))
    assert (pool.padding, pool.stride, pool.strides) == ("valid", None, (2, 2))
