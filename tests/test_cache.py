"""convspec.data.cache: decoded once, memory-mapped after, a new entry when the files change."""

from __future__ import annotations

import os

import numpy as np
import pytest
from own_data import grey, write_tree

from convspec.data.cache import cache_root, cached_images, content_key
from convspec.errors import DataError


def _fill_with(value, calls):
    def fill(images):
        calls.append(len(images))
        images[...] = value
        return {"skipped": [[1, "x.png: broken"]]}
    return fill


def test_an_entry_is_made_once_then_memory_mapped(tmp_path):
    calls, log = [], []
    labels = np.array([0, 1, 2])
    entry = cached_images("k1", (3, 2, 2, 1), labels, _fill_with(7, calls), log.append)
    assert entry.fresh and calls == [3] and log == [f"  cached in {cache_root() / 'k1'}"]
    again = cached_images("k1", (3, 2, 2, 1), labels, _fill_with(9, calls), log.append)
    assert not again.fresh and calls == [3]
    assert isinstance(again.images, np.memmap) and (again.images == 7).all()
    assert again.labels.tolist() == [0, 1, 2] and again.kept.tolist() == [0, 2]
    assert again.meta["skipped"] == [[1, "x.png: broken"]]
    assert sorted(p.name for p in cache_root().iterdir()) == ["k1", "k1.lock"]


def test_a_failed_fill_leaves_no_entry(tmp_path):
    def fail(images):
        raise DataError("bad file")

    with pytest.raises(DataError, match="bad file"):
        cached_images("k2", (2, 1, 1, 1), np.zeros(2), fail, print)
    assert not (cache_root() / "k2").exists()
    assert not any(p.name.startswith(".k2") for p in cache_root().iterdir())


def test_the_key_follows_the_files(tmp_path):
    images, labels = grey(4)
    root = write_tree(tmp_path / "t", images, labels)
    files = sorted(str(p) for p in root.glob("*/*.png"))
    key = content_key(files, labels, {"height": 8})
    assert key == content_key(files, labels, {"height": 8})
    assert key != content_key(files, labels, {"height": 9})
    assert key != content_key(files, labels[::-1], {"height": 8})
    stat = os.stat(files[0])
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert key != content_key(files, labels, {"height": 8})
    with pytest.raises(DataError, match="cannot read the file"):
        content_key([*files, str(tmp_path / "gone.png")], [*labels, 0], {})


def test_a_damaged_entry_or_an_unusable_cache_folder(tmp_path, monkeypatch):
    cached_images("k3", (1, 1, 1, 1), np.zeros(1), _fill_with(1, []), print)
    (cache_root() / "k3" / "images.npy").write_bytes(b"junk")
    with pytest.raises(DataError, match="cache entry .*k3 is damaged .*delete it"):
        cached_images("k3", (1, 1, 1, 1), np.zeros(1), _fill_with(1, []), print)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CONVSPEC_CACHE_DIR", str(blocker))
    with pytest.raises(DataError, match="cannot create the cache folder .*CONVSPEC_CACHE_DIR"):
        cached_images("k4", (1, 1, 1, 1), np.zeros(1), _fill_with(1, []), print)
