"""Property: any YAML text either loads into a spec whose shapes work, or gives located errors.

Random spec dicts (all layer kinds, random and sometimes invalid parameters, random input
sizes, garbage values and keys, occasionally damaged YAML text) must never make the loader
raise anything but ``SpecError``, and every reported problem must carry a line number.

Covers: convspec.specification, convspec.shapes (property: any text loads with working shapes or
gives located errors).
"""

from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convspec.errors import SpecError
from convspec.shapes import infer_shapes
from convspec.specification import LAYER_KINDS, loads_spec, validate_spec

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # only writes the test input
text_value = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(-(10**30), 10**30),
    st.integers(10**300, 10**400),  # beyond float range
    st.floats(allow_nan=True, allow_infinity=True),
    text_value,
    st.lists(st.integers(-2, 5), max_size=3),
    st.dictionaries(st.sampled_from(["a", "kind", "units"]), st.integers(0, 3), max_size=2),
)
garbage_key = st.one_of(
    st.sampled_from(["kernal", "filter", "unit", "Kind", "paddings", "foo", "", "rate ", "size"]),
    st.integers(0, 3),
    text_value,
)


_DIE: dict[int, st.SearchStrategy[int]] = {}


def chance(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws (``one_of`` would merge equal branches)."""
    die = _DIE.setdefault(one_in, st.integers(1, one_in))  # strategies are built once
    return draw(die) == one_in


def maybe(draw: st.DrawFn, good: st.SearchStrategy, bad: st.SearchStrategy = garbage,
          one_in: int = 25) -> object:
    """Mostly a ``good`` value, about once in ``one_in`` a ``bad`` one."""
    return draw(bad) if chance(draw, one_in) else draw(good)


small = st.integers(1, 6)
pair = st.one_of(small, st.lists(small, min_size=2, max_size=2))
padding = st.one_of(
    st.sampled_from(["same", "valid", "SAME", "Valid"]),
    st.integers(0, 3),
    st.lists(st.integers(0, 3), min_size=2, max_size=2),
)
activation = st.sampled_from(["relu", "tanh", "sigmoid", "leaky_relu", "softmax", "relu6",
                              "rel"])
NAME = st.sampled_from(["a", "conv1", "fc1", "pool2", "x_1"])
inputs = st.lists(st.sampled_from(["input", "a", "conv1", "fc1", "relu1", "add1", "nope"]),
                  min_size=1, max_size=3)

PARAMS: dict[str, dict[str, st.SearchStrategy]] = {
    "conv2d": {"filters": st.integers(0, 8), "kernel": pair, "stride": pair,
               "padding": padding, "dilation": pair, "bias": st.booleans(),
               "activation": activation},
    "maxpool": {"size": pair, "stride": pair, "padding": padding},
    "avgpool": {"size": pair, "stride": pair, "padding": padding},
    "relu": {}, "tanh": {}, "sigmoid": {}, "softmax": {}, "flatten": {},
    "leaky_relu": {"alpha": st.floats(-0.5, 1)},
    "dense": {"units": st.integers(0, 20), "bias": st.booleans(), "activation": activation},
    "dropout": {"rate": st.floats(-0.2, 1.2)},
    "batchnorm": {"momentum": st.floats(0, 1.2), "epsilon": st.floats(0, 0.1)},
    "depthwise_conv2d": {"kernel": pair, "stride": pair, "padding": padding, "dilation": pair,
                         "depth_multiplier": st.integers(0, 3), "bias": st.booleans(),
                         "activation": activation},
    "global_avgpool": {}, "relu6": {}, "identity": {},
    "add": {"inputs": inputs}, "concat": {"inputs": inputs},
}
REQUIRED = {"conv2d": {"filters", "kernel"}, "dense": {"units"}, "dropout": {"rate"},
            "depthwise_conv2d": {"kernel"}, "add": {"inputs"}, "concat": {"inputs"}}
assert set(PARAMS) == set(LAYER_KINDS)

KIND = st.sampled_from(LAYER_KINDS)
BAD_KIND = st.one_of(st.sampled_from(["conv", "lstm", "Dense"]), garbage)
PERCENT = st.integers(1, 40)
BAD_NAME = st.one_of(st.sampled_from(["1a", "a-b", ""]), garbage)
CLASSES, BAD_CLASSES = st.integers(2, 12), st.one_of(st.integers(-1, 1), garbage)
SPEC_NAME = st.sampled_from(["net", "my-net.v2", "a_b"])
BAD_SPEC_NAME = st.one_of(st.just("bad name"), garbage)
SIDE, CHANNELS = st.integers(1, 40), st.integers(1, 4)
WEIGHTS = st.fixed_dictionaries({"kind": st.sampled_from(
    ["truncated_normal", "normal", "glorot_uniform", "he_normal", "glorot"])})
BIASES = st.sampled_from(["constant", "zeros", "one"])
TRAIN = st.fixed_dictionaries({}, optional={
    "batch_size": st.integers(0, 128),
    "iterations": st.integers(0, 100),
    "epochs": st.integers(0, 3),
    "dataset": st.sampled_from(["mnist", "fashion-mnist", "cifar"]),
    "optimizer": st.fixed_dictionaries(
        {"kind": st.sampled_from(["adam", "sgd", "momentum", "rmsprop"])},
        optional={"learning_rate": st.floats(-1, 1), "momentum": st.floats(0, 1.5)}),
    "seed": garbage,
})
FLOW = st.sampled_from([None, False])
JUNK = st.text(st.sampled_from(list(":{}[]-,\t\n &*!#'\"%@`|>?\x00")), min_size=1, max_size=3)


@st.composite
def layers(draw: st.DrawFn) -> dict:
    kind = maybe(draw, KIND, BAD_KIND)
    layer: dict = {} if chance(draw, 40) else {"kind": kind}
    params = PARAMS.get(kind, {}) if isinstance(kind, str) else {}
    for key, strategy in params.items():
        # required keys are almost always given; optional ones about 40% of the time
        if draw(PERCENT) <= (39 if key in REQUIRED.get(kind, ()) else 16):
            layer[key] = maybe(draw, strategy, one_in=60)
    if chance(draw, 8):
        layer["name"] = maybe(draw, NAME, BAD_NAME, one_in=6)
    if chance(draw, 12):
        layer["inputs"] = maybe(draw, inputs, one_in=6)
    if chance(draw, 60):
        layer[draw(garbage_key)] = draw(garbage)
    return layer


LAYER_LISTS = st.lists(layers(), max_size=6)
PARAM_VALUE = st.one_of(st.integers(-1, 6), st.sampled_from(["same", "valid", "relu"]))


@st.composite
def blocks(draw: st.DrawFn) -> tuple[dict, dict]:
    """A ``blocks`` section with one block whose layers use a parameter, and an instance."""
    body = [{"kind": "leaky_relu", "alpha": "$p"}, *draw(st.lists(layers(), max_size=2))]
    for layer in body:
        for key in ("filters", "units", "kernel", "padding", "rate"):
            if key in layer and chance(draw, 2):
                layer[key] = maybe(draw, st.just("$p"), st.sampled_from(["$q", "$", "p"]), 8)
    if chance(draw, 3):
        body[-1]["inputs"] = maybe(draw, st.just(["input"]), inputs, 3)
    block = {"params": maybe(draw, st.just(["p"]), st.sampled_from([[], ["p", "p"], ["x"]]), 8),
             "layers": body}
    if chance(draw, 2):
        block["defaults"] = {maybe(draw, st.just("p"), st.just("z"), 8): draw(PARAM_VALUE)}
    instance = {"kind": "block", "block": maybe(draw, st.just("b"), st.just("c"), 10)}
    if chance(draw, 2):
        instance[maybe(draw, st.just("p"), st.just("pp"), 10)] = draw(PARAM_VALUE)
    if chance(draw, 4):
        instance["name"] = maybe(draw, NAME, BAD_NAME, one_in=6)
    return {maybe(draw, st.just("b"), st.just("1b"), 20): block}, instance


@st.composite
def specs(draw: st.DrawFn) -> dict:
    classes = maybe(draw, CLASSES, BAD_CLASSES)
    body = draw(LAYER_LISTS)
    if not chance(draw, 5):  # usually a proper classifier head
        units = draw(CLASSES) if chance(draw, 8) else classes
        body += [{"kind": "flatten"}, {"kind": "dense", "units": units}]
    defined: dict | None = None
    if chance(draw, 5):  # a block, used once
        defined, instance = draw(blocks())
        body.insert(draw(st.integers(0, len(body))), instance)
    spec: dict = {
        "name": maybe(draw, SPEC_NAME, BAD_SPEC_NAME),
        "input": {
            "height": maybe(draw, SIDE),
            "width": maybe(draw, SIDE),
            "channels": maybe(draw, CHANNELS),
        },
        "classes": classes,
        "layers": draw(garbage) if chance(draw, 40) else body,
    }
    if defined is not None:
        spec["blocks"] = defined
    if chance(draw, 5):
        spec["init"] = {"weights": maybe(draw, WEIGHTS), "biases": {"kind": draw(BIASES)}}
    if chance(draw, 5):
        spec["train"] = draw(TRAIN)
    if chance(draw, 20):
        spec[draw(garbage_key)] = draw(garbage)
    if chance(draw, 30):
        del spec[draw(st.sampled_from(sorted(spec, key=str)))]
    return spec


@st.composite
def spec_texts(draw: st.DrawFn) -> str:
    text = yaml.dump(draw(specs()), Dumper=DUMPER, sort_keys=False,
                     default_flow_style=draw(FLOW))
    if chance(draw, 12):  # damage the text itself
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        text = text[:at] + draw(JUNK) + text[at + cut:]
    return text


def check(text: str) -> str:
    """The property for one text; returns which outcome it had."""
    lines = max(len(text.splitlines()), 1)
    try:
        spec = loads_spec(text, source="p.yaml")
    except SpecError as error:
        assert error.items, "a SpecError with no problems in it"
        for item in error.items:
            assert item.line is not None, f"unlocated error: {item}\n{text}"
            assert 1 <= item.line <= lines + 1, (item, text)
            assert item.column is not None and item.column >= 1
            assert item.message
        rendered = str(error)
        assert rendered.count("\n") == len(error.items) - 1
        assert all(line.startswith("p.yaml:") for line in rendered.splitlines())
        return "error"
    table = infer_shapes(spec)
    assert table.rows[-1].output == (spec.classes,)
    assert len(table.rows) == len(spec.layers)
    assert len({layer.name for layer in spec.layers}) == len(spec.layers)
    assert validate_spec(copy.deepcopy(spec.to_dict())) == spec
    return "ok"


def test_load_gives_a_working_spec_or_located_errors():
    outcomes = {"ok": 0, "error": 0}

    @settings(max_examples=200, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(spec_texts())
    def property_holds(text: str) -> None:
        outcomes[check(text)] += 1

    property_holds()
    # guard against a generator that only ever produces errors (or only valid specs)
    assert outcomes["ok"] >= 20, outcomes
    assert outcomes["error"] >= 20, outcomes
