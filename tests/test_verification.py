"""convspec.verification: every compiled model is checked against the NumPy reference before
it trains, evaluates or predicts; a framework kernel that computes another function is routed
around where an equivalent form exists (``shapes.single_window_form``), else refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SPECS, tiny_dataset

import convspec.train.run
from convspec import backends
from convspec.backends import get_backend
from convspec.cli import main
from convspec.reference_comparison import compare_with_reference
from convspec.shapes import single_window_form
from convspec.specification import load_spec, loads_spec
from convspec.verification import ModelMismatch, check_model, verify_model

CASES = Path(__file__).parent / "cases"
KERNEL_BUG = CASES / "kernel-bug-stride-width.yaml"

# Members of the family: one input channel, output width (or height) 1, a stride >= 2 along
# it, with valid, same and explicit padding, dilation, several filters, a later layer.
FAMILY = {
    "case": KERNEL_BUG.read_text(),
    "same_padding": """
name: w_same
input: {height: 5, width: 1, channels: 1}
classes: 3
layers:
  - {kind: conv2d, filters: 3, kernel: [1, 5], stride: [1, 3], padding: same}
  - {kind: flatten}
  - {kind: dense, units: 3}
""",
    "explicit_padding_after_a_pool": """
name: w_pad
input: {height: 3, width: 12, channels: 1}
classes: 4
layers:
  - {kind: maxpool, size: 2, padding: same}
  - {kind: conv2d, filters: 4, kernel: 5, stride: [1, 3], padding: [4, 0]}
  - {kind: flatten}
  - {kind: dense, units: 4}
""",
    "height_axis_and_dilation": """
name: h_dilated
input: {height: 7, width: 6, channels: 1}
classes: 2
layers:
  - {kind: conv2d, filters: 2, kernel: [3, 2], stride: [3, 1], dilation: [3, 1]}
  - {kind: tanh}
  - {kind: flatten}
  - {kind: dense, units: 2}
""",
    "both_axes": """
name: both
input: {height: 4, width: 4, channels: 1}
classes: 2
layers:
  - {kind: conv2d, filters: 2, kernel: 3, stride: 2, padding: valid}
  - {kind: flatten}
  - {kind: dense, units: 2}
""",
}


def test_single_window_form_makes_the_stride_of_a_one_window_axis_one():
    assert single_window_form((7, 1), (3, 5), (1, 2), (1, 1)) == ((1, 1), (None, 5))
    assert single_window_form((1, 4), (3, 2), (3, 2), (3, 1)) == ((1, 2), (7, None))
    assert single_window_form((1, 1), (3, 3), (2, 2), (1, 1)) == ((1, 1), (3, 3))
    assert single_window_form((2, 2), (3, 3), (2, 2), (1, 1)) == ((2, 2), (None, None))
    assert single_window_form((1, 1), (3, 3), (1, 1), (1, 1)) == ((1, 1), (None, None))


@pytest.mark.parametrize("case", list(FAMILY))
def test_the_kernel_bug_family_computes_the_spec_in_every_backend(backend_name, case):
    spec = loads_spec(FAMILY[case])
    model = get_backend(backend_name).compile(spec)
    for seed in range(3):  # the bug read memory outside the input: different every time
        result = verify_model(model, images=8, seed=seed)
        assert result.ok, result.first_failure
    report = compare_with_reference(spec, [backend_name])
    assert report.ok, report.format()


def test_convspec_check_says_ok_for_the_shared_case(capsys):
    assert main(["check", str(KERNEL_BUG)]) == 0
    assert "OK: max abs difference tolerance 1e-05" in capsys.readouterr().out


def _broken_conv(monkeypatch, backend_name: str) -> None:
    """A convolution that is wrong by 1e-3 (a kernel bug stand-in) in ``backend_name``."""
    if backend_name == "torch":
        from convspec.backends.torch import ops
    else:
        from convspec.backends.tensorflow import ops
    real = ops.OPS["conv2d"]
    monkeypatch.setitem(ops.OPS, "conv2d", lambda *args, **kw: real(*args, **kw) + 1e-3)


def test_a_wrong_layer_is_refused_naming_it_and_the_difference(backend_name, monkeypatch):
    _broken_conv(monkeypatch, backend_name)
    model = get_backend(backend_name).compile(load_spec(SPECS / "mnist.yaml"))
    with pytest.raises(ModelMismatch) as caught:
        check_model(model)
    message = str(caught.value)
    assert f"the {backend_name} model of spec 'mnist' computes a different function from the " \
           "spec: layer conv1 (conv2d) differs from the NumPy reference by 0.001" in message
    assert "(tolerance 1e-05)" in message and "--no-reference-check" in message


def test_a_wrong_gradient_is_refused_naming_the_weight(backend_name):
    model = get_backend(backend_name).compile(load_spec(SPECS / "mnist.yaml"))
    real = model.gradients

    def wrong(images, labels, training=False):
        loss, grads = real(images, labels, training)
        return loss, {**grads, "conv2/kernel": grads["conv2/kernel"] * 1.5}

    model.gradients = wrong
    with pytest.raises(ModelMismatch, match=r"gradient of conv2/kernel differs from the "
                                            r"NumPy reference"):
        check_model(model)
    assert verify_model(model, gradients=False).ok  # the forward pass is right


def test_nan_anywhere_is_a_difference(backend_name):
    spec = load_spec(SPECS / "mnist.yaml")
    model = get_backend(backend_name).compile(spec)
    weights = model.get_weights()
    real = model.activations

    def with_nan(images):
        out = real(images)
        out["fc1"] = out["fc1"].copy()
        out["fc1"][0, 0] = np.nan
        return out

    model.activations = with_nan
    result = verify_model(model)
    assert not result.ok and result.first_failure.what == "layer fc1 (dense)"
    assert np.isnan(result.first_failure.difference)
    assert all(np.array_equal(v, weights[k]) for k, v in model.get_weights().items())


def test_trained_weights_are_checked_relative_to_their_activations(backend_name):
    spec = load_spec(SPECS / "mnist.yaml")
    model = get_backend(backend_name).compile(spec)
    big = {k: v * (30.0 if k.endswith("kernel") else 1.0) for k, v in
           model.get_weights().items()}
    model.set_weights(big)
    result = verify_model(model)
    assert result.ok, result.first_failure
    fc2 = next(d for d in result.differences if d.what == "layer fc2 (dense)")
    assert fc2.allowed > 1e-5  # tolerance x the layer's largest |activation|


@pytest.fixture
def numpy_backend(monkeypatch, tmp_path):
    from conftest import LINEAR

    monkeypatch.setitem(backends.BUILTIN, "numpy-linear", "test_train_run:NumpyBackend")
    monkeypatch.setattr(convspec.train.run, "load_data", lambda *a, **k: tiny_dataset())
    path = tmp_path / "linear.yaml"
    path.write_text(LINEAR)
    return path


def test_train_refuses_a_wrong_model_before_the_run_directory_exists(numpy_backend, tmp_path,
                                                                     monkeypatch, capsys):
    from test_train import NumpyLinear

    real = NumpyLinear.activations
    monkeypatch.setattr(NumpyLinear, "activations",
                        lambda self, x: {k: v + 1 for k, v in real(self, x).items()})
    out = tmp_path / "run"
    args = ["train", str(numpy_backend), "--backend", "numpy-linear", "--no-progress",
            "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "layer flatten1 (flatten) differs from the NumPy reference by 1" in err
    assert "Traceback" not in err and not out.exists()
    assert main([*args, "--no-reference-check"]) == 0  # the documented opt-out
    assert (out / "final.json").is_file()


def test_train_says_it_checked_the_model(numpy_backend, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(numpy_backend), "--backend", "numpy-linear", "--no-progress",
                 "--out", str(out)]) == 0
    assert "Checked the numpy-linear model against the NumPy reference (" in \
        capsys.readouterr().out


def test_evaluate_and_predict_check_the_model_too(backend_name, monkeypatch, tmp_path,
                                                  capsys):
    from PIL import Image

    from convspec.weights import init_weights, save_weights

    spec = load_spec(SPECS / "mnist.yaml")
    weights = tmp_path / "w.safetensors"
    save_weights(weights, init_weights(spec), spec)
    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    _broken_conv(monkeypatch, backend_name)
    for args in (["evaluate", str(SPECS / "mnist.yaml"), "--weights", str(weights)],
                 ["predict", str(SPECS / "mnist.yaml"), "--weights", str(weights),
                  str(image)]):
        capsys.readouterr()
        assert main([*args, "--backend", backend_name]) == 1
        err = capsys.readouterr().err
        assert "layer conv1 (conv2d) differs from the NumPy reference" in err, err
        assert "Traceback" not in err


def _digits_npz(path: Path, n: int = 64) -> Path:
    """9x5 one-channel images of two classes (the kernel-bug case's input)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 60, (n, 9, 5)).astype(np.uint8)
    images[labels == 1, :, 2] = 250  # class 1: a bright middle column
    np.savez(path, x_train=images[:48], y_train=labels[:48], x_test=images[48:],
             y_test=labels[48:])
    return path


def test_the_kernel_bug_case_trains_with_the_spec_numbers(backend_name, tmp_path, capsys):
    data = _digits_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    assert main(["train", str(KERNEL_BUG), "--data", str(data), "--iterations", "30",
                 "--batch-size", "8", "--backend", backend_name, "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"Checked the {backend_name} model against the NumPy reference (" in printed
    assert main(["evaluate", str(out)]) == 0


def test_without_the_route_around_the_check_refuses_a_wrong_kernel(backend_name,
                                                                   monkeypatch):
    if backend_name == "torch":
        from convspec.backends.torch import ops
    else:
        from convspec.backends.tensorflow import ops
    monkeypatch.setattr(ops, "single_window_form",
                        lambda output, kernel, stride, dilation: (stride, (None, None)))
    model = get_backend(backend_name).compile(load_spec(KERNEL_BUG))
    raw = verify_model(model, gradients=False)
    if raw.ok:
        pytest.skip(f"this {backend_name} computes the strided form right (the bug reads "
                    "memory outside the input, so it shows only sometimes)")
    with pytest.raises(ModelMismatch, match="layer conv1 \\(conv2d\\) differs"):
        check_model(model)


@pytest.mark.parametrize("case", list(FAMILY))
def test_onnx_runtime_computes_the_family_right_as_exported(case, tmp_path):
    """ONNX Runtime's convolution does not share the bug: the export keeps the strided form."""
    pytest.importorskip("onnxruntime")
    from convspec.export import export_model
    from convspec.weights import init_weights

    spec = loads_spec(FAMILY[case])
    result = export_model(spec, init_weights(spec), "onnx", tmp_path / "m.onnx")
    assert result.max_abs_diff <= 1e-5
