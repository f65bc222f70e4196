"""Layer declarations: the registry agrees with the classes, each kind's contract holds, and
every interpreter has an op for every kind."""

from __future__ import annotations

import importlib
import importlib.util
import typing

import pytest
from annotated_types import Le

from convspec import layers
from convspec.errors import ConvspecError, SpecError
from convspec.layers import (
    ACTIVATIONS,
    LAYER_CLASSES,
    LAYER_KINDS,
    BaseLayer,
    LayerOutput,
    UnknownLayerKindError,
    kind_of,
    layer_class,
    list_layer_kinds,
)
from convspec.layers.activation import ACTIVATION_LAYERS, ActivationLayer
from convspec.specification import loads_spec
from convspec.specification.types import MAX_SIZE

# interpreter -> (module, the kind -> op mapping, the activation kind -> function mapping)
INTERPRETERS = {
    "reference": ("convspec.backends.reference", "OPS", "ACTIVATIONS"),
    "torch": ("convspec.backends.torch.ops", "OPS", "ACTIVATIONS"),
    "tensorflow": ("convspec.backends.tensorflow.ops", "OPS", "ACTIVATIONS"),
    "onnx": ("convspec.export.onnx_format", "OPS", "ACTIVATIONS"),
}
FRAMEWORK = {"torch": "torch", "tensorflow": "tensorflow", "onnx": "onnx"}
BACKENDS = ("torch", "tensorflow")
MERGES = ("add", "concat")


def _interpreter(name: str):
    if name in FRAMEWORK:
        pytest.importorskip(FRAMEWORK[name])
    module, ops, activations = INTERPRETERS[name]
    module = importlib.import_module(module)
    return getattr(module, ops), getattr(module, activations)


def _declared(cls: type) -> list[type[BaseLayer]]:
    """Every concrete layer class below ``cls`` (those with a ``kind`` tag)."""
    out = []
    for sub in cls.__subclasses__():
        if "kind" in sub.model_fields:
            out.append(sub)
        out += _declared(sub)
    return out


# --------------------------------------------------------------------------- registry


def test_registry_and_declarations_agree():
    declared = _declared(BaseLayer)
    assert set(declared) == set(LAYER_CLASSES)  # every declared kind is registered
    assert len(LAYER_KINDS) == len(set(LAYER_KINDS)) == len(LAYER_CLASSES)
    assert LAYER_KINDS == tuple(kind_of(cls) for cls in LAYER_CLASSES)
    assert list_layer_kinds() == list(LAYER_KINDS)
    for kind, cls in zip(LAYER_KINDS, LAYER_CLASSES):
        assert layer_class(kind) is cls
        assert issubclass(cls, BaseLayer)
        assert cls.model_config["extra"] == "forbid" and cls.model_config["strict"] is True
    # the union the spec validates against holds exactly these, in this order
    union = typing.get_args(typing.get_args(layers.Layer)[0])
    assert union == LAYER_CLASSES


def test_a_miss_lists_the_registered_kinds():
    with pytest.raises(UnknownLayerKindError) as info:
        layer_class("conv")
    message = str(info.value)
    assert isinstance(info.value, ConvspecError)
    assert "unknown layer kind 'conv'; did you mean 'conv2d'?" in message
    assert all(kind in message for kind in LAYER_KINDS)
    with pytest.raises(UnknownLayerKindError, match="Registered kinds: conv2d, maxpool"):
        layer_class("lstm")


@pytest.mark.parametrize("cls", LAYER_CLASSES, ids=kind_of)
def test_every_kind_declares_a_name_prefix_and_descriptions(cls):
    assert cls.name_prefix.isidentifier()
    for name, field in cls.model_fields.items():
        assert field.description, f"{kind_of(cls)}.{name} has no description"


def test_the_activation_field_allows_exactly_the_activation_kinds():
    assert ACTIVATIONS == tuple(kind_of(cls) for cls in ACTIVATION_LAYERS)
    assert set(_declared(ActivationLayer)) == set(ACTIVATION_LAYERS)
    assert set(ACTIVATIONS) <= set(LAYER_KINDS)
    for kind in ("conv2d", "dense"):
        annotation = layer_class(kind).model_fields["activation"].annotation
        literal = next(a for a in typing.get_args(annotation) if a is not type(None))
        assert typing.get_args(literal) == ACTIVATIONS


@pytest.mark.parametrize("cls", LAYER_CLASSES, ids=kind_of)
def test_numbers_are_bounded_sizes_and_finite_floats(cls):
    for name, field in cls.model_fields.items():
        if field.annotation is int:
            assert any(isinstance(m, Le) and m.le == MAX_SIZE for m in field.metadata), name
        if field.annotation is float:
            assert any(getattr(m, "allow_inf_nan", None) is False for m in field.metadata), name


@pytest.mark.parametrize("layer, message", [
    ("{kind: conv2d, filters: 2, kernel: 3000000000}",
     "layers[0].conv2d.kernel: must be at most 2,147,483,647, got 3000000000"),
    ("{kind: conv2d, filters: 2, kernel: [3, 1e999999999]}", "layers[0].conv2d.kernel: must be"),
    ("{kind: maxpool, padding: [1, 99999999999]}",
     "layers[0].maxpool.padding: must be at most 2,147,483,647, got 99999999999"),
    ("{kind: conv2d, filters: 4294967296, kernel: 1}",
     "layers[0].conv2d.filters: must be at most 2,147,483,647, got 4294967296"),
    ("{kind: leaky_relu, alpha: .inf}", "layers[0].leaky_relu.alpha:"),
    ("{kind: dropout, rate: .nan}", "layers[0].dropout.rate:"),
    ("{kind: batchnorm, epsilon: 1e400}", "layers[0].batchnorm.epsilon:"),
])
def test_out_of_range_numbers_are_located_errors(layer, message):
    text = (f"name: t\ninput: {{height: 4, width: 4, channels: 1}}\nclasses: 2\nlayers:\n"
            f"  - {layer}\n  - {{kind: flatten}}\n  - {{kind: dense, units: 2}}\n")
    with pytest.raises(SpecError) as info:
        loads_spec(text, source="t.yaml")
    (item,) = info.value.items
    assert item.line == 5 and message in str(info.value)


# --------------------------------------------------------------------------- contract


def _instance(kind: str) -> BaseLayer:
    required = {"conv2d": {"filters": 4, "kernel": 3}, "dense": {"units": 5},
                "dropout": {"rate": 0.5}, "depthwise_conv2d": {"kernel": 3}}
    return layer_class(kind).model_validate({"kind": kind, **required.get(kind, {})})


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_shape_rule_takes_a_tuple_of_incoming_shapes(kind):
    layer = _instance(kind)
    shape = (5,) if kind == "dense" else (6, 6, 2)
    shapes = (shape, shape) if kind in MERGES else (shape,)
    out = layer.compute_output_shape(shapes)
    assert isinstance(out, LayerOutput)
    assert all(isinstance(d, int) and d > 0 for d in out.shape)
    slots = layer.build(shapes)
    assert len({slot.name for slot in slots}) == len(slots)
    if kind in MERGES:
        with pytest.raises(ValueError, match=f"{kind} merges two or more inputs, got 1"):
            layer.compute_output_shape((shape,))
    else:
        with pytest.raises(ValueError, match=f"{kind} takes exactly one input, got 2"):
            layer.compute_output_shape((shape, shape))


def test_conv2d_and_dense_slots():
    conv = _instance("conv2d")
    out = conv.compute_output_shape(((6, 6, 2),))
    assert (out.shape, out.macs, out.pads) == ((4, 4, 4), 4 * 4 * 4 * 3 * 3 * 2, ((0, 0), (0, 0)))
    kernel, bias = conv.build(((6, 6, 2),))
    assert (kernel.name, kernel.shape, kernel.trainable, kernel.init) == (
        "kernel", (3, 3, 2, 4), True, "weights")
    assert (bias.name, bias.shape, bias.trainable, bias.init) == ("bias", (4,), True, "biases")
    no_bias = layer_class("dense").model_validate({"kind": "dense", "units": 3, "bias": False})
    assert [s.name for s in no_bias.build(((7,),))] == ["kernel"]


def test_batchnorm_moving_statistics_are_not_trainable():
    slots = _instance("batchnorm").build(((4, 4, 3),))
    assert [(s.name, s.shape, s.trainable, s.init) for s in slots] == [
        ("gamma", (3,), True, "ones"), ("beta", (3,), True, "zeros"),
        ("moving_mean", (3,), False, "zeros"), ("moving_variance", (3,), False, "ones")]


def test_fused_activation_is_the_activation_kind_with_its_defaults():
    dense = layer_class("dense").model_validate({"kind": "dense", "units": 2,
                                                 "activation": "leaky_relu"})
    act = dense.activation_layer
    assert act.kind == "leaky_relu" and act.alpha == 0.2
    assert _instance("dense").activation_layer is None


# --------------------------------------------------------------------------- interpreters


@pytest.mark.parametrize("interpreter", list(INTERPRETERS))
@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_every_kind_has_an_op_in_every_interpreter(kind, interpreter):
    ops, activations = _interpreter(interpreter)
    assert kind in ops, f"{interpreter} has no op for layer kind {kind!r}"
    if kind in ACTIVATIONS:
        assert kind in activations, f"{interpreter} has no function for activation {kind!r}"


@pytest.mark.parametrize("interpreter", list(INTERPRETERS))
def test_interpreters_map_no_unknown_kinds(interpreter):
    ops, activations = _interpreter(interpreter)
    assert set(ops) == set(LAYER_KINDS)
    assert set(activations) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", BACKENDS)
def test_backends_declare_what_they_build(name):
    """A backend's declared layer kinds (convspec.backends.check_support reads them) are the
    kinds its interpreter has ops for: a spec is refused exactly when it would fail."""
    from convspec.backends import FEATURES, STACK_KINDS, get_backend

    backend = get_backend(name) if importlib.util.find_spec(FRAMEWORK[name]) else None
    if backend is None:
        pytest.skip(f"{name} is not installed")
    declared = set(getattr(backend, "layer_kinds", STACK_KINDS))
    assert declared == set(LAYER_KINDS)
    assert set(getattr(backend, "features", ())) == set(FEATURES)
