"""convspec.data.decode_pool: worker processes give the same array as decoding in-process,
and report unreadable files (skipped or an error) and wrong sizes (always an error)."""

from __future__ import annotations

import numpy as np
import pytest
from own_data import grey, write_tree

from convspec.data import decode_pool
from convspec.data.decode_pool import decode_files
from convspec.data.decoder import DecodeOptions
from convspec.errors import DataError

OPTIONS = DecodeOptions(8, 6, 1)


@pytest.fixture
def files(tmp_path):
    images, labels = grey(40, classes=4)
    root = write_tree(tmp_path / "tree", images, labels)
    paths = sorted(str(p) for p in root.glob("*/*.png"))
    by_name = {f"{i:05d}.png": image for i, image in enumerate(images)}
    expected = np.stack([by_name[p.rsplit("/", 1)[1]] for p in paths])[..., None]
    return paths, expected


def _memmap(tmp_path, n):
    return np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.uint8,
                                     shape=(n, 8, 6, 1))


def test_workers_and_in_process_give_the_same_array(tmp_path, files, monkeypatch):
    paths, expected = files
    alone = np.zeros((len(paths), 8, 6, 1), np.uint8)
    decode_files(paths, alone, OPTIONS, workers=1)
    np.testing.assert_array_equal(alone, expected)
    monkeypatch.setattr(decode_pool, "IN_PROCESS_BELOW", 10)
    shared = _memmap(tmp_path, len(paths))
    messages = []
    report = decode_files(paths, shared, OPTIONS, workers=2, log=messages.append)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    assert report.skipped == [] and report.resized == 0 and report.seconds > 0


@pytest.mark.parametrize("workers", [1, 2])
def test_unreadable_files_are_errors_or_skipped(tmp_path, files, monkeypatch, workers):
    paths, expected = files
    monkeypatch.setattr(decode_pool, "IN_PROCESS_BELOW", 10)
    with open(paths[25], "wb") as f:
        f.write(b"garbage")
    with pytest.raises(DataError, match=rf"{paths[25]}: not a readable image .*on_error: skip"):
        decode_files(paths, _memmap(tmp_path, len(paths)), OPTIONS, workers=workers)
    out = _memmap(tmp_path, len(paths))
    report = decode_files(paths, out, OPTIONS, workers=workers, skip_unreadable=True)
    assert [index for index, _ in report.skipped] == [25]
    assert (out[25] == 0).all()
    keep = [i for i in range(len(paths)) if i != 25]
    np.testing.assert_array_equal(out[keep], expected[keep])


def test_a_wrong_size_is_an_error_even_when_skipping(tmp_path, files):
    paths, _ = files
    from PIL import Image

    Image.new("L", (9, 9)).save(paths[3])
    with pytest.raises(DataError, match=rf"{paths[3]}: the image is 9x9 .*add resize: "):
        decode_files(paths, _memmap(tmp_path, len(paths)), OPTIONS, skip_unreadable=True)
    report = decode_files(paths, _memmap(tmp_path, len(paths)),
                          DecodeOptions(8, 6, 1, resize="nearest"))
    assert report.resized == 1
