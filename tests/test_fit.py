"""convspec.data.probe and convspec.data.fit: what each source holds, read cheaply, and the
documented answer for every way data and spec can disagree."""

from __future__ import annotations

import numpy as np
import pytest
from own_data import grey, write_idx, write_path_csv, write_pixel_csv, write_tree

from convspec.data.fit import check_fits
from convspec.data.probe import probe
from convspec.errors import DataError
from convspec.specification import loads_spec

SPEC = """name: s
input: {height: %d, width: %d, channels: %d}
classes: %d
layers: [{kind: flatten}, {kind: dense, units: %d}]
train: {dataset: mnist%s}
"""


def spec(h=8, w=6, c=1, classes=3, normalize=""):
    return loads_spec(SPEC % (h, w, c, classes, classes, normalize))


def source(kind, path, **options):
    extra = "".join(f", {k}: {v}" for k, v in options.items())
    text = (SPEC % (8, 6, 1, 3, 3, "")).replace(
        "dataset: mnist", f"dataset: {{kind: {kind}, path: {path}{extra}}}")
    return loads_spec(text).train.dataset


@pytest.fixture
def tree(tmp_path):
    images, labels = grey(12, classes=3)
    return write_tree(tmp_path / "tree", images, labels, names=["ant", "bee", "cat"])


def test_probe_each_kind(tmp_path, tree):
    s = probe(source("folder", tree))
    assert (s.kind, s.name, s.class_names, s.sizes) == ("folder", "tree", ("ant", "bee", "cat"),
                                                        {"train": 12})
    assert s.shape is None and len(s.samples) == 3 and (s.samples[0].height,
                                                        s.samples[0].width) == (8, 6)
    assert s.describe() == f"folder {tree}: train 12 images; 3 classes (ant, bee, cat)"
    images, labels = grey(10, classes=4)
    s = probe(source("idx", write_idx(tmp_path / "idx", (images, labels), (images, labels))))
    assert s.shape == (8, 6, 1) and s.sizes == {"train": 10, "test": 10} and len(
        s.class_names) == 4
    np.savez(tmp_path / "d.npz", x_train=np.zeros((5, 8, 6, 3), np.uint8),
             y_train=np.arange(5), x_val=np.zeros((2, 8, 6, 3), np.uint8), y_val=[0, 1])
    s = probe(source("npz", tmp_path / "d.npz"))
    assert s.shape == (8, 6, 3) and s.sizes == {"train": 5, "validation": 2}
    assert s.class_names == ("0", "1", "2", "3", "4")
    s = probe(source("csv", write_pixel_csv(tmp_path / "k.csv", images, labels)))
    assert s.pixels == 48 and s.sizes == {"train": 10}
    files = [str(p.relative_to(tmp_path)) for p in sorted(tree.glob("*/*.png"))]
    s = probe(source("csv", write_path_csv(tmp_path / "p.csv", files, ["x", "y", "z"] * 4)))
    assert s.class_names == ("x", "y", "z") and len(s.samples) == 3
    assert probe("mnist").shape == (28, 28, 1) and probe("mnist").kind == "builtin"


def test_arrays_must_have_the_input_shape_and_channels(tmp_path):
    np.savez(tmp_path / "rgb.npz", x_train=np.zeros((4, 8, 6, 3), np.uint8),
             y_train=[0, 1, 2, 0])
    summary = probe(source("npz", tmp_path / "rgb.npz"))
    check_fits(spec(c=3), summary)
    with pytest.raises(DataError, match=r"spec 's' takes 8x6x1 images \(input: height 8, "
                                        r"width 6, channels 1\), but .npz .* has 8x6x3 images"):
        check_fits(spec(c=1), summary)
    with pytest.raises(DataError, match="takes 32x32x3 images .* but MNIST has 28x28x1"):
        check_fits(spec(32, 32, 3, classes=10), probe("mnist"))


def test_pixel_csv_must_have_the_input_pixel_count(tmp_path):
    images, labels = grey(4, size=(4, 4))
    summary = probe(source("csv", write_pixel_csv(tmp_path / "k.csv", images, labels)))
    check_fits(spec(4, 4), summary)
    with pytest.raises(DataError, match="i.e. 48 pixel values per row, but CSV .* has 16 "
                                        "pixel columns"):
        check_fits(spec(), summary)


def test_image_files_of_another_size_or_channel_count(tmp_path, tree):
    summary = probe(source("folder", tree))
    assert check_fits(spec(), summary) == []
    with pytest.raises(DataError, match=r"takes 10x6x1 images .* but .*tree/ant/\d+.png is 8x6 "
                                        r"\(height x width\); .* add resize: bilinear"):
        check_fits(spec(h=10), summary)
    resized = probe(source("folder", tree, resize="bicubic"))
    assert "are resized (bicubic)" in check_fits(spec(h=10), resized)[0]
    assert check_fits(spec(c=3), summary) == []  # grey files are read as RGB when asked
    with pytest.raises(DataError, match="image files are read as 1 \\(grey\\) or 3 \\(RGB\\)"):
        check_fits(spec(c=4), summary)


def test_colour_files_for_a_grey_spec_are_converted_with_a_note(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (3, 8, 6, 3), dtype=np.uint8)
    summary = probe(source("folder", write_tree(tmp_path / "rgb", rgb, np.arange(3))))
    assert "are converted to grey" in check_fits(spec(), summary)[0]
    assert check_fits(spec(c=3), summary) == []


def test_class_counts(tmp_path, tree):
    summary = probe(source("folder", tree))
    with pytest.raises(DataError, match=r"spec 's' has 2 classes, but folder .* has 3 \(ant, "
                                        r"bee, cat\); set classes: 3"):
        check_fits(spec(classes=2), summary)
    notes = check_fits(spec(classes=5), summary)
    assert notes == ["the spec has 5 classes and the data 3 (ant, bee, cat): outputs 3..4 are "
                     "never a target"]


def test_labels_outside_the_classes_given(tmp_path):
    images, labels = grey(6, classes=3)
    folder = write_idx(tmp_path / "idx", (images, labels), (images, labels))
    with pytest.raises(DataError, match=r"label 2 is outside the 2 classes given \(a, b\)"):
        probe(source("idx", folder, classes="[a, b]"))
    np.savez(tmp_path / "neg.npz", x_train=images, y_train=labels - 1)
    with pytest.raises(DataError, match="label -1 is not a class index"):
        probe(source("npz", tmp_path / "neg.npz"))


def test_npz_layout_mistakes(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((3, 8, 6), np.uint8), y_train=[0, 1, 2],
             x_test=np.zeros((2, 8, 6), np.uint8))
    with pytest.raises(DataError, match="has no array 'y_test'"):
        probe(source("npz", tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", x_train=np.zeros((3, 8, 6), np.int32), y_train=[0, 1, 2])
    with pytest.raises(DataError, match="uint8 .* or float .*; got shape .* dtype <i4"):
        probe(source("npz", tmp_path / "b.npz"))
    np.savez(tmp_path / "c.npz", x_train=np.zeros((3, 8, 6), np.uint8), y_train=[0, 1])
    with pytest.raises(DataError, match=r"labels must be \(3,\) or \(3, 1\)"):
        probe(source("npz", tmp_path / "c.npz"))


def test_normalize_needs_one_value_per_channel(tree):
    summary = probe(source("folder", tree))
    check_fits(spec(normalize=", normalize: {kind: mean_std, mean: [0.5], std: [0.2]}"),
               summary)
    with pytest.raises(DataError, match="2 mean / std value\\(s\\); the spec's input has 1"):
        check_fits(spec(normalize=", normalize: {kind: mean_std, mean: [0, 0], std: [1, 1]}"),
                   summary)
