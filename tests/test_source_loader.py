"""convspec.data.source_loader: every source kind loads, splits and preprocesses the same
images the same way (small synthetic data; the real-data runs are in test_own_data.py)."""

from __future__ import annotations

import numpy as np
import pytest
from own_data import class_order, grey, write_idx, write_path_csv, write_pixel_csv, write_tree

from convspec.data import load_data
from convspec.errors import DataError
from convspec.specification import loads_spec

SPEC = """name: s
input: {height: 8, width: 6, channels: %d}
classes: 3
layers: [{kind: flatten}, {kind: dense, units: 3}]
train:
  dataset: %s
%s"""


def spec_for(dataset: str, channels: int = 1, extra: str = ""):
    return loads_spec(SPEC % (channels, dataset, extra))


@pytest.fixture
def layouts(tmp_path):
    """The same 30 training and 9 test images as a tree, IDX, pixel CSVs and an .npz, each in
    the order a class-folder tree lists them."""
    (x, y), (tx, ty) = grey(30, classes=3, seed=1), grey(9, classes=3, seed=2)
    write_tree(tmp_path / "tree" / "train", x, y)
    write_tree(tmp_path / "tree" / "test", tx, ty)
    o, to = class_order(y), class_order(ty)
    x, y, tx, ty = x[o], y[o], tx[to], ty[to]
    write_idx(tmp_path / "idx", (x, y), (tx, ty))
    write_pixel_csv(tmp_path / "train.csv", x, y)
    write_pixel_csv(tmp_path / "test.csv", tx, ty)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=tx, y_test=ty)
    return {
        "folder": f"{{kind: folder, path: {tmp_path / 'tree'}}}",
        "idx": f"{{kind: idx, path: {tmp_path / 'idx'}}}",
        "csv": f"{{kind: csv, path: {tmp_path / 'train.csv'}, test_path: {tmp_path / 'test.csv'}}}",
        "npz": f"{{kind: npz, path: {tmp_path / 'd.npz'}}}",
    }


def test_every_layout_gives_the_same_splits(layouts):
    loaded = {kind: load_data(spec_for(dataset)) for kind, dataset in layouts.items()}
    first = loaded["folder"]
    assert (len(first.train), len(first.validation), len(first.test)) == (27, 3, 9)
    assert first.class_names == ("0", "1", "2")
    assert np.bincount(first.validation.labels).tolist() == [1, 1, 1]  # stratified
    for kind, data in loaded.items():
        for split in ("train", "validation", "test"):
            a, b = getattr(first, split), getattr(data, split)
            np.testing.assert_array_equal(np.asarray(a.images), np.asarray(b.images), kind)
            np.testing.assert_array_equal(a.labels, b.labels, kind)
        assert data.info["split"] == {"seed": 0, "validation": 0.1, "test": "given"}


def test_split_options_and_given_validation(layouts, tmp_path):
    data = load_data(spec_for(layouts["npz"][:-1] + ", validation_split: 0.2, split_seed: 5}"))
    assert len(data.validation) == 6 and len(data.train) == 24
    x, y = grey(6, seed=3)
    np.savez(tmp_path / "v.npz", x_train=x, y_train=y, x_val=x[:3], y_val=y[:3])
    data = load_data(spec_for(f"{{kind: npz, path: {tmp_path / 'v.npz'}, test_split: 0.5}}"))
    assert (len(data.train), len(data.validation), len(data.test)) == (3, 3, 3)
    assert data.info["split"] == {"seed": 0, "validation": "given", "test": 0.5}


def test_normalisation_given_or_computed_on_the_training_split(layouts):
    plain = load_data(spec_for(layouts["idx"]))
    given = load_data(spec_for(layouts["idx"], extra="  normalize: {kind: mean_std, mean: [0.5]"
                                                      ", std: [0.25]}\n"))
    np.testing.assert_allclose(given.test.images[:], (plain.test.images[:] - 0.5) / 0.25,
                               atol=1e-6)
    computed = load_data(spec_for(layouts["idx"], extra="  normalize: {kind: per_channel}\n"))
    train = np.asarray(plain.train.images, np.float64)
    assert computed.preprocessing.mean == pytest.approx((train.mean(),), rel=1e-6)
    assert computed.preprocessing.std == pytest.approx((train.std(),), rel=1e-5)
    assert abs(np.asarray(computed.train.images).mean()) < 1e-5


def test_colour_npz_and_float_npz(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 8, 6, 3), dtype=np.uint8)
    labels = np.arange(9) % 3
    np.savez(tmp_path / "rgb.npz", x_train=rgb, y_train=labels)
    data = load_data(spec_for(f"{{kind: npz, path: {tmp_path / 'rgb.npz'}}}", channels=3))
    assert data.image_shape == (8, 6, 3)
    np.savez(tmp_path / "f.npz", x_train=rgb.astype(np.float32) / 255, y_train=labels)
    floats = load_data(spec_for(f"{{kind: npz, path: {tmp_path / 'f.npz'}}}", channels=3))
    np.testing.assert_allclose(np.asarray(floats.train.images), np.asarray(data.train.images),
                               atol=1e-6)
    np.savez(tmp_path / "g.npz", x_train=rgb.astype(np.float32), y_train=labels)
    with pytest.raises(DataError, match=r"float images must be in \[0, 1\], found 0..2\d\d"):
        load_data(spec_for(f"{{kind: npz, path: {tmp_path / 'g.npz'}}}", channels=3))


def test_corrupt_files_stop_or_are_skipped_and_counted(tmp_path):
    x, y = grey(12, classes=3)
    root = write_tree(tmp_path / "tree", x, y)
    broken = sorted(root.glob("1/*.png"))[0]
    broken.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=f"{broken}: not a readable image"):
        load_data(spec_for(f"{{kind: folder, path: {root}}}"))
    notes = []
    data = load_data(spec_for(f"{{kind: folder, path: {root}, on_error: skip}}"),
                     log=notes.append)
    assert data.info["skipped"] == 1
    assert len(data.train) + len(data.validation) + len(data.test) == 11
    assert any("1 unreadable image(s)" in n and str(broken) in n for n in notes)


def test_a_path_csv_of_sixteen_bit_pngs_with_name_labels(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (6, 8, 6), dtype=np.uint16)
    names = ["cat", "dog", "cat", "eel", "dog", "eel"]
    (tmp_path / "img").mkdir()
    for i, image in enumerate(deep):
        Image.fromarray(image).save(tmp_path / "img" / f"{i}.png")
    csv = write_path_csv(tmp_path / "list.csv", [f"img/{i}.png" for i in range(6)], names)
    data = load_data(spec_for(f"{{kind: csv, path: {csv}, validation_split: 0, "
                              f"test_split: 0}}"))
    assert data.class_names == ("cat", "dog", "eel")
    assert data.train.labels.tolist() == [0, 1, 0, 2, 1, 2]
    expected = np.round(deep.astype(np.int64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(data.train.images.stored_rows(slice(None))[..., 0], expected)


def test_each_load_is_checked_against_the_spec(layouts, tmp_path):
    with pytest.raises(DataError, match="takes 8x6x3 images .* but IDX files .* has 8x6x1 "):
        load_data(spec_for(layouts["idx"], channels=3))
    x, y = grey(6, classes=2)
    write_tree(tmp_path / "two", x, y)
    (tmp_path / "two" / "empty").mkdir()
    with pytest.raises(DataError, match="class folder .*empty holds no images"):
        load_data(spec_for(f"{{kind: folder, path: {tmp_path / 'two'}}}"))


def test_idx_prefix_and_transposed_images(tmp_path):
    x, y = grey(9, classes=3, size=(6, 8))  # stored transposed, as EMNIST does
    write_idx(tmp_path / "emnist", (x, y), (x[:3], y[:3]), prefix="emnist-letters-")
    write_idx(tmp_path / "emnist", (x, y), (x, y), prefix="emnist-digits-")
    data = load_data(spec_for(f"{{kind: idx, path: {tmp_path / 'emnist'}, prefix: "
                              f"emnist-letters-, transpose: true}}"))
    assert data.image_shape == (8, 6, 1) and len(data.test) == 3
    np.testing.assert_array_equal(data.test.images.stored_rows(slice(None))[..., 0],
                                  x[:3].transpose(0, 2, 1))
    with pytest.raises(DataError, match="several files could be the train images"):
        load_data(spec_for(f"{{kind: idx, path: {tmp_path / 'emnist'}}}"))
