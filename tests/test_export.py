"""``convspec export`` and ``convspec.export``: every format loads back and computes what the
NumPy reference computes, for the tutorial network and an awkward one; the command's output,
default paths, refusals and errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import SPECS, tiny_dataset

from convspec.backends import STACK_KINDS, features_used, is_available
from convspec.backends.reference import ReferenceModel
from convspec.cli import main
from convspec.errors import BackendError, UsageError
from convspec.export import (
    FORMATS,
    TOLERANCE,
    Comparison,
    ExportError,
    export_model,
    run_export,
    verify_export,
)
from convspec.specification import LAYER_KINDS, load_spec, loads_spec
from convspec.weights import init_weights

# What each format needs to be written and loaded back (skipped cleanly when missing).
NEEDS = {"onnx": ("onnx", "onnxruntime"), "torchscript": ("torch",),
         "savedmodel": ("tensorflow",)}

# Odd input; stride-2 SAME conv with asymmetric pads; SAME max/avg pools with odd sizes and
# asymmetric pads; explicit pool padding; dilation; every activation (softmax over channels as
# a conv activation, over units as a layer); batch norm after a conv and after a dense layer
# (non-trivial moving statistics); dropout in both parts; a dense layer without bias; a layer
# called "logits" (the graph output's own name). Each of these, done wrong in the ONNX graph
# (pads swapped, pads counted, C-H-W flatten, default slope or epsilon, no dilation), moves
# the logits by 2e-5 to 7e-3, well above the tolerance.
AWKWARD = """
name: awkward
input: {height: 29, width: 31, channels: 3}
classes: 5
layers:
  - {kind: conv2d, name: conv1, filters: 6, kernel: [4, 2], stride: 2, padding: same}
  - {kind: batchnorm, name: bn1, epsilon: 1.0e-4}
  - {kind: leaky_relu, alpha: 0.1}
  - {kind: maxpool, size: 2, padding: same}
  - {kind: conv2d, filters: 5, kernel: 3, dilation: 2, padding: same, activation: softmax}
  - {kind: avgpool, size: 3, stride: 2, padding: same}
  - {kind: dropout, rate: 0.3}
  - {kind: conv2d, filters: 8, kernel: 2, padding: [1, 0], activation: tanh}
  - {kind: maxpool, size: [3, 2], stride: 1, padding: 1}
  - {kind: avgpool, size: 2, stride: 1, padding: [1, 0]}
  - {kind: sigmoid}
  - {kind: flatten}
  - {kind: dense, units: 12, activation: leaky_relu}
  - {kind: batchnorm, name: bn2, momentum: 0.9}
  - {kind: dropout, rate: 0.5}
  - {kind: softmax}
  - {kind: tanh}
  - {kind: dense, units: 7, bias: false, activation: relu}
  - {kind: relu}
  - {kind: dense, name: logits, units: 5}
"""

# Every kind the awkward stack lacks, in a graph: grouped and depthwise convolutions (one with
# a multiplier, odd sizes, SAME pads), relu6 fused and alone, identity, add and concat (of
# feature maps and of flat vectors), a residual block used twice (once with stride 2 and a
# projection shortcut), global average pooling, a layer taking the image directly.
AWKWARD_GRAPH = """
name: awkward_graph
input: {height: 9, width: 7, channels: 4}
classes: 5
blocks:
  res:
    params: [filters, stride]
    defaults: {stride: 1}
    layers:
      - {kind: conv2d, name: a, filters: $filters, kernel: 3, stride: $stride, padding: same,
         bias: false}
      - {kind: batchnorm, name: bn}
      - {kind: relu6, name: act}
      - {kind: depthwise_conv2d, name: dw, kernel: [3, 2], padding: same, activation: relu6}
      - {kind: conv2d, name: proj, inputs: [input], filters: $filters, kernel: 1,
         stride: $stride}
      - {kind: add, name: sum, inputs: [dw, proj]}
layers:
  - {kind: conv2d, name: stem, filters: 6, kernel: 3, padding: same, groups: 2,
     activation: relu6}
  - {kind: depthwise_conv2d, name: dw1, kernel: 3, stride: 2, padding: same,
     depth_multiplier: 2}
  - {kind: identity, name: skip}
  - {kind: block, block: res, name: r1, filters: 12}
  - {kind: concat, name: cat, inputs: [r1, skip]}
  - {kind: block, block: res, name: r2, filters: 8, stride: 2}
  - {kind: global_avgpool, name: gap}
  - {kind: conv2d, name: side, inputs: [input], filters: 3, kernel: 3, stride: 3}
  - {kind: flatten, name: side_flat}
  - {kind: dense, name: fc, inputs: [gap], units: 6, activation: relu}
  - {kind: concat, name: cat2, inputs: [fc, gap, side_flat]}
  - {kind: dense, name: logits, units: 5}
"""

SPEC_TEXTS = {"mnist": (SPECS / "mnist.yaml").read_text(), "awkward": AWKWARD,
              "awkward_graph": AWKWARD_GRAPH}


def _require(fmt: str) -> None:
    for module in NEEDS[fmt]:
        pytest.importorskip(module)


def trained_like(spec, seed: int = 1) -> dict[str, np.ndarray]:
    """init_weights perturbed by seeded noise (kernels by 1 / sqrt(fan-in), so activations
    stay O(1)); biases and batch-norm parameters away from their defaults, moving variances
    positive and far from 1."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, value in init_weights(spec).items():
        slot = name.rsplit("/", 1)[-1]
        if slot == "moving_variance":
            value = rng.uniform(0.3, 3.0, value.shape)
        elif slot == "gamma":
            value = rng.uniform(0.5, 1.5, value.shape)
        elif slot == "kernel":
            value = value + rng.normal(0.0, value[..., 0].size ** -0.5, value.shape)
        else:
            value = value + rng.normal(0.0, 0.3, value.shape)
        weights[name] = value.astype(np.float32)
    return weights


@pytest.fixture(scope="module")
def cases():
    return {key: (spec, trained_like(spec))
            for key, spec in ((k, loads_spec(t, source=k)) for k, t in SPEC_TEXTS.items())}


@pytest.fixture(scope="module")
def exported(cases, tmp_path_factory):
    """(spec key, format) -> ExportResult, each written (and verified) once per module."""
    root = tmp_path_factory.mktemp("exports")
    done = {}

    def get(key: str, fmt: str):
        _require(fmt)
        if (key, fmt) not in done:
            spec, weights = cases[key]
            done[key, fmt] = export_model(spec, weights, fmt,
                                          root / f"{key}{FORMATS[fmt].default_name}")
        return done[key, fmt]

    return get


def test_awkward_specs_cover_every_layer_kind(cases):
    stack, graph = cases["awkward"][0], cases["awkward_graph"][0]
    kinds = {layer.kind for layer in stack.layers}
    activations = {layer.activation for layer in stack.layers if hasattr(layer, "activation")}
    assert kinds == STACK_KINDS
    assert {"relu", "tanh", "sigmoid", "leaky_relu", "softmax"} <= kinds | activations
    graph_kinds = {layer.kind for layer in graph.layers}
    assert kinds | graph_kinds == set(LAYER_KINDS)
    assert {layer.activation for layer in graph.layers if hasattr(layer, "activation")} >= {
        "relu6"}
    assert {"graphs", "grouped_conv2d"} == set(features_used(graph))


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("key", list(SPEC_TEXTS))
def test_export_matches_numpy_reference(key, fmt, cases, exported):
    spec, weights = cases[key]
    result = exported(key, fmt)
    assert result.path.exists() and result.format == fmt
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOLERANCE
    # other images, negative values included (a zero-padded max-pool would show), batch 5
    shape = (5, spec.input.height, spec.input.width, spec.input.channels)
    images = np.random.default_rng(7).normal(0.0, 1.0, shape).astype(np.float32)
    got = run_export(result.path, fmt, images)
    want = ReferenceModel(spec, weights).predict(images)
    assert got.shape == (5, spec.classes) and got.dtype == np.float32
    diff = float(np.max(np.abs(got - want)))
    assert diff <= TOLERANCE * max(1.0, float(np.max(np.abs(want))))


def test_onnx_graph_contract(cases, exported):
    import onnx

    spec, _ = cases["awkward"]
    model = onnx.load(str(exported("awkward", "onnx").path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["images"]
    assert [o.name for o in model.graph.output] == ["logits"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [29, 31, 3]
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    props = {p.key: p.value for p in model.metadata_props}
    assert props["convspec.spec_name"] == "awkward"
    assert props["convspec.architecture_hash"] == spec.architecture_hash()
    assert props["convspec.version"]
    ops = {n.op_type for n in model.graph.node}
    assert {"Conv", "MaxPool", "AveragePool", "BatchNormalization", "Gemm", "Softmax",
            "LeakyRelu", "Sigmoid", "Tanh", "Relu", "Flatten"} <= ops
    avg = [n for n in model.graph.node if n.op_type == "AveragePool"]
    assert all(onnx.helper.get_attribute_value(a) == 0
               for n in avg for a in n.attribute if a.name == "count_include_pad")


@pytest.mark.parametrize("key", list(SPEC_TEXTS))
def test_onnx_every_layer_matches_numpy_reference(key, cases):
    """The graph with every layer's tensor as an extra output: layer by layer against the
    reference (NCHW there, NHWC here), so a mistake cannot hide behind later layers."""
    _require("onnx")
    import onnx
    import onnxruntime as ort

    from convspec.export import onnx_format

    spec, weights = cases[key]
    model = onnx_format.build(spec, weights)
    names = [layer.name for layer in spec.layers]
    inferred = onnx.shape_inference.infer_shapes(model).graph.value_info
    infos = {i.name: i for i in inferred}
    model.graph.output.extend(infos[onnx_format.tensor_name(n)] for n in names[:-1])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    shape = (3, spec.input.height, spec.input.width, spec.input.channels)
    images = np.random.default_rng(3).normal(0.0, 1.0, shape).astype(np.float32)
    outputs = session.run([onnx_format.tensor_name(n) for n in names[:-1]] + ["logits"],
                          {"images": images})
    expected = ReferenceModel(spec, weights).activations(images)
    for name, got in zip(names, outputs, strict=True):
        got = got.transpose(0, 2, 3, 1) if got.ndim == 4 else got
        want = expected[name]
        assert got.shape == want.shape, name
        assert np.max(np.abs(got - want)) <= TOLERANCE * max(1.0, np.max(np.abs(want))), name


def test_torchscript_and_savedmodel_carry_metadata(cases, exported):
    spec, _ = cases["mnist"]
    meta = {}
    if is_available("torch"):
        import torch

        files = {"convspec.json": ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.load(str(exported("mnist", "torchscript").path), _extra_files=files)
        meta["torchscript"] = json.loads(files["convspec.json"])
    if is_available("tensorflow"):
        path = exported("mnist", "savedmodel").path
        meta["savedmodel"] = json.loads((path / "assets.extra" / "convspec.json").read_text())
        import tensorflow as tf

        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        (images,) = signature.structured_input_signature[1].values()
        assert images.name == "images" and images.shape.as_list() == [None, 28, 28, 1]
        assert list(signature.structured_outputs) == ["logits"]
    if not meta:
        pytest.skip("neither PyTorch nor TensorFlow is installed")
    for found in meta.values():
        assert found["spec_name"] == "mnist"
        assert found["architecture_hash"] == spec.architecture_hash()


def test_tolerance_grows_with_the_logits_only_above_one():
    small, large = Comparison(2e-6, 0.8), Comparison(3e-5, 25.0)
    assert small.limit() == TOLERANCE and large.limit() == pytest.approx(25 * TOLERANCE)
    assert small.describe() == "max abs diff vs NumPy reference: 2e-06 (tolerance 1e-05)"
    assert large.describe(1e-6) == ("max abs diff vs NumPy reference: 3e-05 (tolerance "
                                    "2.5e-05 = 1e-06 x largest |logit| 25)")


def test_padded_cells_never_win_or_count_in_onnx(tmp_path):
    """All-negative images through SAME pools with bottom/right padding: a zero pad would
    win the max; counting pads would shrink the average towards zero."""
    _require("onnx")
    for pool in ("maxpool", "avgpool"):
        spec = loads_spec(f"""
name: pads
input: {{height: 5, width: 5, channels: 1}}
classes: 9
layers:
  - {{kind: {pool}, size: 2, padding: same}}
  - {{kind: flatten}}
  - {{kind: dense, units: 9, bias: false}}
""")
        weights = {"fc1/kernel": np.eye(9, dtype=np.float32)}
        path = export_model(spec, weights, "onnx", tmp_path / f"{pool}.onnx").path
        images = np.full((2, 5, 5, 1), -1.0, dtype=np.float32)
        np.testing.assert_array_equal(run_export(path, "onnx", images), -np.ones((2, 9)))


@pytest.mark.parametrize("name", sorted(p.name for p in (SPECS.parent / "tests" / "specs"
                                                         / "valid").glob("*.yaml")))
def test_onnx_export_of_every_valid_test_spec(name, tmp_path):
    _require("onnx")
    spec = load_spec(SPECS.parent / "tests" / "specs" / "valid" / name)
    weights = trained_like(spec)
    result = export_model(spec, weights, "onnx", tmp_path / "m.onnx")
    assert result.max_abs_diff <= TOLERANCE


# --- library: refusing, replacing, failing safely -------------------------------------------

@pytest.fixture
def small():
    spec = load_spec(SPECS.parent / "tests" / "specs" / "valid" / "stride2_conv.yaml")
    return spec, trained_like(spec)


def test_existing_output_is_refused_unless_forced(small, tmp_path):
    _require("onnx")
    spec, weights = small
    out = tmp_path / "m.onnx"
    out.write_text("keep me")
    with pytest.raises(UsageError, match="already exists.*--force"):
        export_model(spec, weights, "onnx", out)
    assert out.read_text() == "keep me"
    assert export_model(spec, weights, "onnx", out, force=True).path == out
    assert out.read_bytes() != b"keep me"
    folder = tmp_path / "photos"
    folder.mkdir()
    for fmt in FORMATS:  # --force never deletes a directory that is not an earlier export
        with pytest.raises(UsageError, match="not a"):
            export_model(spec, weights, fmt, folder, force=True)
    assert folder.is_dir()


def test_failed_verification_writes_nothing(small, tmp_path, monkeypatch):
    _require("onnx")
    import convspec.export as export

    spec, weights = small
    monkeypatch.setattr(export, "compare_export", lambda *a, **k: export.Comparison(0.5, 0.7))
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="max abs diff 0.5 exceeds the tolerance 1e-05"):
        export_model(spec, weights, "onnx", out)
    assert list(tmp_path.iterdir()) == []
    out.write_text("older export")
    with pytest.raises(ExportError):
        export_model(spec, weights, "onnx", out, force=True)
    assert out.read_text() == "older export" and list(tmp_path.iterdir()) == [out]


def test_missing_packages_name_the_extra(small, tmp_path, monkeypatch):
    import importlib.util

    spec, weights = small
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("onnx", "onnxruntime", "torch",
                                                          "tensorflow") else real(name, *a))
    for fmt, extra in (("onnx", "export"), ("torchscript", "torch"), ("savedmodel", "tf")):
        with pytest.raises(BackendError, match=rf'pip install "convspec\[{extra}\]"'):
            export_model(spec, weights, fmt, tmp_path / fmt)
    with pytest.raises(BackendError, match="--no-verify"):
        verify_export(tmp_path / "m.onnx", "onnx", spec, weights)
    assert list(tmp_path.iterdir()) == []


def test_cli_imports_no_framework():
    code = ("import sys, convspec.cli.export_cmd as c, convspec.export as e\n"
            "assert c.FORMATS == tuple(e.FORMATS), c.FORMATS\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'tensorflow', 'onnx', 'onnxruntime'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# --- the command, on a tiny trained run -----------------------------------------------------

TINY = """
name: tiny
input: {height: 28, width: 28, channels: 1}
classes: 10
layers:
  - {kind: conv2d, filters: 4, kernel: 3, stride: 2, padding: same, activation: relu}
  - {kind: maxpool, size: 3, stride: 2, padding: same}
  - {kind: flatten}
  - {kind: dense, units: 10}
train: {dataset: mnist, batch_size: 16, iterations: 2}
"""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run directory from `convspec train --iterations 2` on the synthetic tiny dataset."""
    backend = next((b for b in ("torch", "tensorflow") if is_available(b)), None)
    if backend is None:
        pytest.skip("no backend installed to train with")
    import convspec.train.run

    root = tmp_path_factory.mktemp("trained")
    (root / "tiny.yaml").write_text(TINY)
    out = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(convspec.train.run, "load_data", lambda *a, **k: tiny_dataset())
        assert main(["train", str(root / "tiny.yaml"), "--backend", backend, "--iterations",
                     "2", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture
def run_dir(trained_run, tmp_path):
    return shutil.copytree(trained_run, tmp_path / "run")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_cli_exports_to_the_default_path(fmt, run_dir, capsys):
    _require(fmt)
    capsys.readouterr()
    assert main(["export", str(run_dir), "--format", fmt]) == 0
    out = capsys.readouterr().out
    path = run_dir / FORMATS[fmt].default_name
    assert path.is_dir() if fmt == "savedmodel" else path.is_file()
    assert re.search(r"max abs diff vs NumPy reference: \S+ \(tolerance (1e-05|\S+ = "
                     r"1e-05 x largest \|logit\| \S+)\)\n", out), out
    assert f"wrote {path}" in out
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temporaries


def test_cli_out_force_and_no_verify(run_dir, tmp_path, capsys):
    _require("onnx")
    out = tmp_path / "exports" / "tiny.onnx"
    assert main(["export", str(run_dir), "-f", "onnx", "--out", str(out)]) == 0
    first = out.read_bytes()
    capsys.readouterr()
    assert main(["export", str(run_dir), "-f", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {out} already exists" in err and "--force" in err
    assert "Traceback" not in err and out.read_bytes() == first
    assert main(["export", str(run_dir), "-f", "onnx", "--out", str(out), "--force",
                 "--no-verify"]) == 0
    text = capsys.readouterr().out
    assert "not verified" in text and "max abs diff" not in text
    # a weights file inside the run directory works as RUN_DIR too
    assert main(["export", str(run_dir / "weights.safetensors"), "-f", "onnx"]) == 0
    assert (run_dir / "model.onnx").is_file()


def test_cli_bad_run_dir_and_format(run_dir, tmp_path, capsys):
    capsys.readouterr()
    assert main(["export", str(tmp_path / "missing"), "-f", "onnx"]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(empty), "-f", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "has no spec.yaml" in err and "convspec train" in err and "Traceback" not in err
    (run_dir / "weights.safetensors").write_bytes(b"garbage")
    assert main(["export", str(run_dir), "-f", "onnx"]) == 1
    err = capsys.readouterr().err
    assert "not a readable safetensors weights file" in err and "Traceback" not in err
    assert main(["export", str(run_dir), "--format", "pickle"]) == 2
    assert "'pickle' is not one of" in capsys.readouterr().err
    assert not list(run_dir.glob("model*"))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("weights_of", [
    lambda w: {k: np.full_like(v, np.nan) for k, v in w.items()},  # NaN logits everywhere
    lambda w: {k: v * np.float32(1e30) for k, v in w.items()},  # finite weights, inf logits
])
def test_nan_logits_are_never_written_as_verified(small, tmp_path, weights_of):
    _require("onnx")
    from convspec.export import compare_export

    spec, weights = small
    bad = weights_of(weights)
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="computes NaN or infinite logits"):
        export_model(spec, bad, "onnx", out)
    assert list(tmp_path.iterdir()) == []
    export_model(spec, weights, "onnx", out)
    comparison = compare_export(out, "onnx", spec, bad)
    assert np.isnan(comparison.max_abs_diff)  # never 0.0, never within a tolerance
    assert not comparison.max_abs_diff <= comparison.limit()


def test_an_export_into_a_read_only_folder_is_one_line(small, tmp_path):
    _require("onnx")
    from mounts import read_only

    from convspec.errors import FileSystemError

    spec, weights = small
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder), pytest.raises(FileSystemError, match=r"cannot write .*ro/m\.onnx: "
                                                                 r"Read-only file system"):
        export_model(spec, weights, "onnx", folder / "m.onnx")


def test_a_killed_export_leaves_nothing_after_the_next(small, tmp_path):
    _require("onnx")
    import subprocess as sp

    spec, weights = small
    proc = sp.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = tmp_path / f".m.onnx.{proc.pid}.export.tmp"
    stale.write_bytes(b"\0" * 1000)
    export_model(spec, weights, "onnx", tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
