"""Real data through every source kind (slow): MNIST written out as a class-folder PNG tree,
an IDX folder, Kaggle CSVs and an .npz train to bit-identical weights; scikit-learn's digits
train through an .npz and a CSV; coloured MNIST digits train through an RGB spec with both
backends. Skipped cleanly without the shared MNIST files or the needed packages.

Covers: convspec.data, convspec.cli.train_cmd (real data through every source kind).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import BACKENDS, ROOT, SHARED_MNIST, require_backend
from own_data import class_order, write_idx, write_pixel_csv, write_tree

from convspec.cli import main

pytestmark = pytest.mark.slow
TRAIN, TEST = 3000, 500  # the first images of MNIST's training and test files


@pytest.fixture(scope="session")
def mnist_layouts(tmp_path_factory):
    """The same MNIST subset as a PNG tree (train/ and test/), an IDX folder, Kaggle CSVs and
    an .npz; the last three in the order a class-folder tree lists the images."""
    if SHARED_MNIST is None:
        pytest.skip("the full MNIST files are not in ../shared/data/mnist")
    from convspec.data.idx import read_idx

    def part(stem: str, n: int) -> np.ndarray:
        return read_idx(SHARED_MNIST / f"{stem}.gz")[:n]

    x, y = part("train-images-idx3-ubyte", TRAIN), part("train-labels-idx1-ubyte", TRAIN)
    tx, ty = part("t10k-images-idx3-ubyte", TEST), part("t10k-labels-idx1-ubyte", TEST)
    root = tmp_path_factory.mktemp("mnist-layouts")
    write_tree(root / "tree" / "train", x, y)
    write_tree(root / "tree" / "test", tx, ty)
    o, to = class_order(y), class_order(ty)
    x, y, tx, ty = x[o], y[o], tx[to], ty[to]
    write_idx(root / "idx", (x, y), (tx, ty))
    (root / "kaggle").mkdir()
    write_pixel_csv(root / "kaggle" / "train.csv", x, y)
    write_pixel_csv(root / "kaggle" / "test.csv", tx, ty)
    np.savez_compressed(root / "mnist.npz", x_train=x, y_train=y, x_test=tx, y_test=ty)
    (root / "kaggle.yaml").write_text((ROOT / "specs" / "mnist.yaml").read_text().replace(
        "dataset: mnist", "dataset: {kind: csv, path: kaggle/train.csv, test_path: "
        "kaggle/test.csv}"))
    return root


def test_every_layout_trains_to_bit_identical_weights(mnist_layouts, tmp_path, capsys):
    require_backend("torch")
    from safetensors.numpy import load_file

    root, mnist = mnist_layouts, str(ROOT / "specs" / "mnist.yaml")
    runs = {
        "folder": ["train", mnist, "--data", str(root / "tree")],
        "idx": ["train", mnist, "--data", str(root / "idx")],
        "csv": ["train", str(root / "kaggle.yaml")],  # relative paths, from the spec's folder
        "npz": ["train", mnist, "--data", str(root / "mnist.npz")],
    }
    weights, finals = {}, {}
    for kind, args in runs.items():
        out = tmp_path / kind
        assert main([*args, "--iterations", "100", "--out", str(out), "--no-progress"]) == 0
        text = capsys.readouterr().out
        assert "- Training-set:\t\t2700" in text and "- Test-set:\t\t500" in text, kind
        weights[kind] = load_file(out / "weights.safetensors")
        finals[kind] = json.loads((out / "final.json").read_text())
    for kind in ("idx", "csv", "npz"):
        assert weights[kind].keys() == weights["folder"].keys()
        for name, value in weights["folder"].items():
            np.testing.assert_array_equal(weights[kind][name], value, f"{kind} {name}")
        assert finals[kind]["test"] == finals["folder"]["test"]
        assert finals[kind]["val_accuracy"] == finals["folder"]["val_accuracy"]
    assert finals["folder"]["test"]["accuracy"] > 0.5  # 100 steps of the tutorial network: ~60%


DIGITS_SPEC = """name: digits
input: {height: 8, width: 8, channels: 1}
classes: 10
layers:
  - {kind: conv2d, filters: 16, kernel: 3, padding: same, activation: relu}
  - {kind: maxpool, size: 2}
  - {kind: flatten}
  - {kind: dense, units: 64, activation: relu}
  - {kind: dense, units: 10}
train:
  dataset: {kind: npz, path: digits.npz, test_split: 0.2}
  optimizer: {kind: adam, learning_rate: 0.003}
  batch_size: 32
  iterations: 400
  validate_every: 200
"""


def test_scikit_learn_digits_through_npz_and_csv(tmp_path, capsys):
    require_backend("torch")
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    images = digits.images.astype(np.float32) / 16  # 1,797 real 8x8 scans, values 0..16
    np.savez(tmp_path / "digits.npz", x_train=images, y_train=digits.target,
             class_names=np.array([f"digit {d}" for d in range(10)]))
    write_pixel_csv(tmp_path / "digits.csv", np.round(images * 255).astype(np.uint8),
                    digits.target)
    (tmp_path / "digits.yaml").write_text(DIGITS_SPEC)
    accuracy = {}
    for name, extra in (("npz", []), ("csv", ["--data", str(tmp_path / "digits.csv")])):
        out = tmp_path / name
        assert main(["train", str(tmp_path / "digits.yaml"), "--out", str(out),
                     "--no-progress", *extra]) == 0
        final = json.loads((out / "final.json").read_text())
        assert final["test"]["total"] == 359  # 20%, stratified
        accuracy[name] = final["test"]["accuracy"]
    assert min(accuracy.values()) > 0.9, accuracy
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "npz")]) == 0
    assert "  3 digit 3 " in capsys.readouterr().out


PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255],
                    [0, 255, 255], [255, 128, 0], [128, 0, 255], [0, 128, 64], [255, 255, 255]],
                   np.float32)

RGB_SPEC = """name: colour
input: {height: 32, width: 32, channels: 3}
classes: 10
layers:
  - {kind: conv2d, filters: 8, kernel: 5, padding: same, activation: relu}
  - {kind: maxpool, size: 2}
  - {kind: conv2d, filters: 16, kernel: 5, padding: same, activation: relu}
  - {kind: maxpool, size: 2}
  - {kind: flatten}
  - {kind: dense, units: 10}
train:
  dataset: {kind: folder, path: coloured}
  optimizer: {kind: adam, learning_rate: 0.002}
  batch_size: 32
  iterations: 150
  validate_every: 150
"""


def test_coloured_digits_through_an_rgb_spec_with_both_backends(mnist_layouts, tmp_path,
                                                               capsys):
    from convspec.data.idx import read_idx

    x = read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")[:600]
    y = read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")[:600]
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2))).astype(np.float32) / 255
    rgb = np.round(padded[..., None] * PALETTE[y][:, None, None, :]).astype(np.uint8)
    write_tree(tmp_path / "coloured", rgb, y)
    (tmp_path / "colour.yaml").write_text(RGB_SPEC)
    for backend in BACKENDS:
        require_backend(backend)
    results = {}
    for backend in BACKENDS:
        out = tmp_path / backend
        assert main(["train", str(tmp_path / "colour.yaml"), "--backend", backend, "--out",
                     str(out), "--no-progress"]) == 0
        results[backend] = json.loads((out / "final.json").read_text())["test"]
        assert results[backend]["accuracy"] > 0.85, (backend, results[backend])
    capsys.readouterr()
    for backend in BACKENDS:  # the other backend scores the same weights the same way
        other = next(b for b in BACKENDS if b != backend)
        assert main(["evaluate", str(tmp_path / backend), "--backend", other, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["correct"] == results[backend]["correct"]
    assert abs(results["torch"]["accuracy"] - results["tensorflow"]["accuracy"]) <= 0.05
