"""convspec.data.array_files: IDX and .npz headers and labels read without NumPy, compared
with what NumPy reads."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from own_data import grey, write_idx

from convspec.data.array_files import (
    find_idx_files,
    idx_dims,
    idx_labels,
    npz_members,
    npz_small_array,
)
from convspec.errors import DataError


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_headers_and_small_arrays(tmp_path, compressed):
    path = tmp_path / "d.npz"
    save = np.savez_compressed if compressed else np.savez
    save(path, x_train=np.zeros((5, 4, 3, 2), np.uint8), y_train=np.array([3, 1, 2, 0, 9]),
         x_test=np.zeros((2, 4, 3), np.float32), y_test=np.array([[1], [2]], ">i2"),
         y_val=np.array([1.0, 2.0]), class_names=np.array(["cat", "dog", "gnu"]))
    members = npz_members(path)
    assert members["x_train"] == ((5, 4, 3, 2), "|u1")
    assert members["x_test"] == ((2, 4, 3), "<f4")
    assert members["y_test"] == ((2, 1), ">i2")
    assert npz_small_array(path, "y_train") == [3, 1, 2, 0, 9]
    assert npz_small_array(path, "y_test") == [1, 2]
    assert npz_small_array(path, "y_val") == [1.0, 2.0]
    assert npz_small_array(path, "class_names") == ["cat", "dog", "gnu"]


def test_npz_errors(tmp_path):
    with pytest.raises(DataError, match="no such .npz file"):
        npz_members(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz file"):
        npz_members(bad)
    path = tmp_path / "s.npz"
    np.savez(path, y_train=np.array(["a", "b"], object))
    with pytest.raises(DataError, match="not supported"):
        npz_small_array(path, "y_train")


def test_an_idx_header_that_does_not_fit_its_file_is_refused_from_the_header(tmp_path):
    import gzip
    import struct

    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\0\0\x08\x03" + struct.pack(">3I", 2**31, 2**31, 4) + b"\0" * 18)
    with pytest.raises(DataError, match=r"its header says \(2147483648, 2147483648, 4\), "
                                        r"18,446,744,073,709,551,616 bytes of data, but the "
                                        r"file holds 18"):
        idx_dims(path)
    gz = tmp_path / "train-images-idx3-ubyte.gz"  # known only once decompressed: read_idx
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert idx_dims(gz) == (2**31, 2**31, 4)


def test_idx_headers_labels_and_files(tmp_path):
    images, labels = grey(6, classes=4, size=(5, 7))
    folder = write_idx(tmp_path / "set", (images, labels), (images[:2], labels[:2]),
                       prefix="emnist-letters-")
    files = find_idx_files(folder, "emnist-letters-")
    assert set(files) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert idx_dims(files["train_images"]) == (6, 5, 7)
    assert list(idx_labels(files["train_labels"])) == labels.tolist()
    write_idx(folder, (images, labels), (images, labels), prefix="emnist-digits-")
    with pytest.raises(DataError, match="several files could be the train images.*set prefix"):
        find_idx_files(folder)
    with pytest.raises(DataError, match="no train images file starting with 'kmnist-'"):
        find_idx_files(folder, "kmnist-")
    with pytest.raises(DataError, match="no such folder"):
        find_idx_files(tmp_path / "none")
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\x00\x00\x0d\x03")
    with pytest.raises(DataError, match="not a uint8 IDX file"):
        idx_dims(bogus)


def test_reading_headers_imports_no_numpy(tmp_path):
    images, labels = grey(3)
    folder = write_idx(tmp_path / "set", (images, labels), (images, labels))
    np.savez(tmp_path / "d.npz", x_train=images, y_train=labels)
    code = ("import sys; from pathlib import Path; "
            "from convspec.data.array_files import find_idx_files, idx_dims, npz_members, "
            "npz_small_array; "
            f"f = find_idx_files(Path({str(folder)!r})); idx_dims(f['train_images']); "
            f"npz_members(Path({str(tmp_path / 'd.npz')!r})); "
            f"npz_small_array(Path({str(tmp_path / 'd.npz')!r}), 'y_train'); "
            "print('numpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
