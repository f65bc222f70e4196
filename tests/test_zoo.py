"""specs/zoo/: every spec validates and prints the published counts; each count agrees with
the one the framework computes for the same network, built with its own modules (torchvision
cannot be installed beside this torch, so ResNet-18 is torchvision's code written out in plain
torch.nn; MobileNet is keras.applications.MobileNet itself).

Covers: specs/zoo/ through convspec.specification, convspec.shapes, convspec.summary,
convspec.reference_comparison.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import ROOT, SPECS

from convspec.cli import main
from convspec.specification import load_spec

ZOO = SPECS / "zoo"

# name -> (total params, trainable, non-trainable, MACs); the published figures are
# torchvision's resnet18 (11,689,512 parameters, 1.81 GFLOPS, i.e. multiply-accumulates),
# Keras' MobileNet() (4,253,864, 21,888 non-trainable), the Keras CIFAR-10 example's
# ResNet-20 v1 (274,442, 1,376 non-trainable), LeNet-5 (61,706) and the tutorial (242,062).
COUNTS = {
    "lenet5": (61_706, 61_706, 0, 416_520),
    "mnist": (242_062, 242_062, 0, 3_363_072),
    "vgg_fashion": (870_634, 870_634, 0, 19_094_528),
    "resnet18": (11_699_112, 11_689_512, 9_600, 1_814_073_344),
    "resnet20_cifar": (274_442, 273_066, 1_376, 40_813_184),
    "mobilenet_v1": (4_253_864, 4_231_976, 21_888, 568_740_352),
    "fashion_resnet": (78_426, 77_754, 672, 9_345_920),
}


def test_the_zoo_is_complete():
    assert {path.stem for path in ZOO.glob("*.yaml")} == set(COUNTS)


@pytest.mark.parametrize("name", list(COUNTS))
def test_shapes_prints_the_published_counts(name, capsys):
    total, trainable, frozen, macs = COUNTS[name]
    table = load_spec(ZOO / f"{name}.yaml").table
    assert (table.params, table.trainable_params, table.non_trainable_params, table.macs) == (
        total, trainable, frozen, macs)
    assert main(["shapes", str(ZOO / f"{name}.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    totals = lines[lines.index(next(line for line in lines if line.startswith("Total params:"))):]
    assert totals[0].startswith(f"Total params: {total:,} (")
    assert totals[1].startswith(f"Trainable params: {trainable:,} (")
    assert totals[2].startswith(f"Non-trainable params: {frozen:,} (")
    assert totals[3].startswith(f"{total:,} parameters, {macs:,} MACs = ")
    assert totals[4].startswith("training needs at least ")


def test_resnet18_in_well_under_a_second_without_a_framework():
    started = time.perf_counter()
    table = load_spec(ZOO / "resnet18.yaml").table
    assert time.perf_counter() - started < 1.0 and table.trainable_params == 11_689_512
    code = ("import sys; from convspec.cli import main; main(['shapes', "
            "'specs/zoo/resnet18.yaml']); print([m for m in ('torch', 'tensorflow', 'numpy') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.splitlines()
    assert out[-1] == "[]" and "Trainable params: 11,689,512 (44.59 MB)" in out
    assert any("1,814,073,344 MACs = 3.63 GFLOPs" in line for line in out)


# --------------------------------------------------------------------------- torch


def _torch_resnet18():
    """torchvision.models.resnet18, written out in plain torch.nn (torchvision's names)."""
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, inplanes: int, planes: int, stride: int = 1):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride,
                                                          bias=False), nn.BatchNorm2d(planes))

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            widths, inplanes = (64, 128, 256, 512), 64
            for i, planes in enumerate(widths, 1):
                stride = 1 if i == 1 else 2
                setattr(self, f"layer{i}", nn.Sequential(BasicBlock(inplanes, planes, stride),
                                                         BasicBlock(planes, planes)))
                inplanes = planes
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for i in range(1, 5):
                x = getattr(self, f"layer{i}")(x)
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet18()


def _convspec_name(torch_name: str) -> str:
    """layer2.0.downsample.1.running_var -> layer2_0_downsample_bn/moving_variance"""
    layer, _, tensor = torch_name.rpartition(".")
    layer = layer.replace(".", "_").replace("downsample_0", "downsample")
    layer = layer.replace("downsample_1", "downsample_bn")
    batchnorm = "bn" in layer.rsplit("_", 1)[-1] or layer.endswith("downsample_bn")
    slot = {"weight": "gamma" if batchnorm else "kernel", "bias": "beta" if batchnorm else "bias",
            "running_mean": "moving_mean", "running_var": "moving_variance"}[tensor]
    return f"{layer}/{slot}"


def test_resnet18_counts_are_torchs():
    torch = pytest.importorskip("torch")
    model = _torch_resnet18()
    spec = load_spec(ZOO / "resnet18.yaml")
    params = {name: p.numel() for name, p in model.named_parameters()}
    stats = {name: b.numel() for name, b in model.named_buffers()
             if not name.endswith("num_batches_tracked")}
    assert sum(params.values()) == spec.table.trainable_params == 11_689_512
    assert sum(stats.values()) == spec.table.non_trainable_params == 9_600
    # tensor by tensor, under torchvision's names
    ours = {name: slot.size for name, slot in spec.table.weights.items()}
    theirs = {_convspec_name(name): n for name, n in {**params, **stats}.items()}
    assert theirs == ours
    # MACs as torch's modules compute them on a forward pass (convolutions and the linear)
    macs = []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs.append(output.numel() * kh * kw * module.in_channels // module.groups)
        elif isinstance(module, torch.nn.Linear):
            macs.append(module.in_features * module.out_features)

    for module in model.modules():
        module.register_forward_hook(count)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
    assert sum(macs) == spec.table.macs == 1_814_073_344
    assert round(sum(macs) / 1e9, 2) == 1.81  # torchvision's "GFLOPS"


# --------------------------------------------------------------------------- keras


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("tensorflow")
    import keras

    return keras


def _keras_counts(model) -> tuple[int, int, int]:
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    frozen = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    return model.count_params(), trainable, frozen


def test_mobilenet_counts_are_keras(keras):
    model = keras.applications.MobileNet(weights=None)  # alpha 1.0, 224x224x3, 1000 classes
    spec = load_spec(ZOO / "mobilenet_v1.yaml")
    table = spec.table
    assert _keras_counts(model) == (table.params, table.trainable_params,
                                    table.non_trainable_params) == (4_253_864, 4_231_976, 21_888)
    # weight by weight, in order (the classifier: Keras' 1x1 convolution, our dense layer)
    theirs = [(int(w.numpy().size), w.trainable) for w in model.weights]
    ours = [(slot.size, slot.trainable) for slot in table.weights.values()]
    assert sorted(theirs) == sorted(ours) and len(theirs) == len(ours)


def test_resnet20_counts_are_the_keras_examples(keras):
    """resnet_v1(depth=20) of the Keras CIFAR-10 example, built with Keras layers."""
    from keras import layers

    def unit(x, filters, strides=1, kernel=3, activation=True, batch_norm=True):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same")(x)
        x = layers.BatchNormalization()(x) if batch_norm else x
        return layers.Activation("relu")(x) if activation else x

    inputs = keras.Input((32, 32, 3))
    x = unit(inputs, 16)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            strides = 2 if stage > 0 and block == 0 else 1
            y = unit(unit(x, filters, strides), filters, activation=False)
            if strides == 2:
                x = unit(x, filters, strides, kernel=1, activation=False, batch_norm=False)
            x = layers.Activation("relu")(layers.add([x, y]))
    x = layers.Flatten()(layers.AveragePooling2D(8)(x))
    model = keras.Model(inputs, layers.Dense(10)(x))
    table = load_spec(ZOO / "resnet20_cifar.yaml").table
    assert _keras_counts(model) == (table.params, table.trainable_params,
                                    table.non_trainable_params) == (274_442, 273_066, 1_376)


@pytest.mark.parametrize("name", ["lenet5", "mnist", "vgg_fashion", "fashion_resnet"])
def test_small_zoo_counts_are_keras(keras, name):
    """The other zoo specs, rebuilt layer by layer in Keras from the expanded spec."""
    from keras import layers

    spec = load_spec(ZOO / f"{name}.yaml")
    tensors = {"input": keras.Input((spec.input.height, spec.input.width,
                                     spec.input.channels))}
    for layer, row in zip(spec.layers, spec.table.rows):
        xs = [tensors[source] for source in row.inputs]
        tensors[row.name] = _keras_layer(layers, layer, row)(xs if len(xs) > 1 else xs[0])
    model = keras.Model(tensors["input"], tensors[spec.layers[-1].name])
    table = spec.table
    assert _keras_counts(model) == (table.params, table.trainable_params,
                                    table.non_trainable_params)
    assert [tuple(t.shape[1:]) for t in model.outputs] == [(spec.classes,)]


def _keras_layer(layers, layer, row):
    if layer.kind == "conv2d":
        (top, bottom), (left, right) = row.pads
        conv = layers.Conv2D(layer.filters, layer.kernel, layer.stride, use_bias=layer.bias,
                             activation=layer.activation)
        pad = layers.ZeroPadding2D(((top, bottom), (left, right)))
        return lambda x: conv(pad(x))
    if layer.kind in ("maxpool", "avgpool"):
        pool = layers.MaxPooling2D if layer.kind == "maxpool" else layers.AveragePooling2D
        return pool(layer.size, layer.strides, padding="same" if row.pads != (
            (0, 0), (0, 0)) else "valid")
    return {
        "batchnorm": lambda: layers.BatchNormalization(),
        "relu": lambda: layers.ReLU(), "tanh": lambda: layers.Activation("tanh"),
        "flatten": lambda: layers.Flatten(), "dropout": lambda: layers.Dropout(layer.rate),
        "dense": lambda: layers.Dense(layer.units, activation=layer.activation,
                                      use_bias=layer.bias),
        "add": lambda: layers.Add(), "global_avgpool": lambda: layers.GlobalAveragePooling2D(),
    }[layer.kind]()


# --------------------------------------------------------------------------- convspec's own


LARGE = ("resnet18", "mobilenet_v1")  # 224x224x3: a framework run takes seconds on a CPU
INTERPRETERS = {"torch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}


@pytest.mark.parametrize("name, interpreter", [
    pytest.param(name, interpreter, marks=[pytest.mark.slow] if name in LARGE
                 and interpreter != "onnx" else [])
    for name in COUNTS for interpreter in INTERPRETERS])
def test_check_passes_on_every_zoo_spec(name, interpreter):
    """Every node of every zoo network, NumPy reference against each backend and ONNX
    Runtime (``convspec check``)."""
    pytest.importorskip(INTERPRETERS[interpreter])
    from convspec.reference_comparison import compare_with_reference

    spec = load_spec(ZOO / f"{name}.yaml")
    report = compare_with_reference(spec, [interpreter], batch=2)
    assert report.ok, report.format()
    assert report.layers == [row.name for row in spec.table.rows]


def _held_by_torch(model) -> tuple[int, int]:
    """(trainable, non-trainable) scalars the compiled torch module holds: its parameters,
    and the rest of its state dict (buffers: batch-norm moving statistics)."""
    trainable = sum(p.numel() for p in model.net.parameters())
    return trainable, sum(t.numel() for t in model.net.state_dict().values()) - trainable


def _held_by_tensorflow(model) -> tuple[int, int]:
    """(trainable, non-trainable) scalars of the compiled tf.Module's variables."""
    return (sum(int(v.shape.num_elements()) for v in model.net.trainable_variables),
            sum(int(v.shape.num_elements()) for v in model.net.non_trainable_variables))


@pytest.mark.parametrize("name", list(COUNTS))
def test_compiled_models_hold_the_counted_parameters(backend_name, name):
    """What each framework itself holds for the compiled spec is what ``convspec shapes``
    counts: torch parameters and buffers, TensorFlow variables."""
    import convspec

    table = load_spec(ZOO / f"{name}.yaml").table
    model = convspec.compile(load_spec(ZOO / f"{name}.yaml"), backend_name)
    held = {"torch": _held_by_torch, "tensorflow": _held_by_tensorflow}[backend_name](model)
    assert held == (table.trainable_params, table.non_trainable_params)
    assert sum(held) == COUNTS[name][0]
