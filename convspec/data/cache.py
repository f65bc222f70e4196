"""The decoded-image cache: a folder or CSV is decoded once into a uint8 ``.npy`` file, and
memory-mapped on every later use (so it may be bigger than memory).

An entry lives in ``<cache>/decoded/<key>/`` (``<cache>`` is ``$CONVSPEC_CACHE_DIR`` or
``~/.cache/convspec``) and holds ``images.npy`` (N, H, W, C) uint8, ``labels.npy`` (N,) int64,
``kept.npy`` (the rows not skipped as unreadable) and ``meta.json``. The key is a SHA-256 of
the source's content as the file system reports it (every file's path, size and modification
time, the labels) and of the decoding options, so changing, adding or removing a file, or
asking for another size, makes a new entry. An entry is written in a temporary folder and
renamed into place when complete, under a lock, so concurrent runs (data-parallel ranks)
decode once and never see half an entry. Delete the folder to reclaim the space.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .sources import default_cache_dir

FORMAT = 1  # bump when what an entry holds changes


@dataclass(frozen=True)
class CacheEntry:
    """A complete entry: memory-mapped images, labels, the rows kept, and its record."""

    folder: Path
    images: np.ndarray
    labels: np.ndarray
    kept: np.ndarray
    meta: dict[str, Any]
    fresh: bool  # decoded just now


def content_key(files: Iterable[str], labels: Iterable[int], options: dict[str, Any]) -> str:
    """SHA-256 (32 hex digits) of every file's path, size and mtime, the labels and the
    options. ``DataError`` naming a file that cannot be read."""
    digest = hashlib.sha256(json.dumps({"format": FORMAT, **options}, sort_keys=True).encode())
    for path, label in zip(files, labels, strict=True):
        try:
            st = os.stat(path)
        except OSError as exc:
            raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
        digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{label}\n".encode())
    return digest.hexdigest()[:32]


def cache_root() -> Path:
    return default_cache_dir() / "decoded"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the rename still keeps entries whole
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open(folder: Path) -> CacheEntry | None:
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        images = np.load(folder / "images.npy", mmap_mode="r")
        labels = np.load(folder / "labels.npy")
        kept = np.load(folder / "kept.npy")
    except (OSError, ValueError) as exc:
        raise DataError(f"the decoded-image cache entry {folder} is damaged ({exc}); delete "
                        "it and run again") from None
    return CacheEntry(folder, images, labels, kept, meta, fresh=False)


def cached_images(key: str, shape: tuple[int, int, int, int], labels: np.ndarray,
                  fill: Callable[[np.ndarray], dict[str, Any]],
                  log: Callable[[str], None]) -> CacheEntry:
    """The entry ``key``; when absent, ``fill(images)`` writes the (N, H, W, C) uint8 array
    and returns the record (with ``skipped``: [[row, message], ...]) kept in meta.json."""
    root = cache_root()
    folder = root / key
    entry = _open(folder)
    if entry is not None:
        return entry
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the cache folder {root} ({exc.strerror or exc}); set "
                        "CONVSPEC_CACHE_DIR to a writable folder") from None
    with _locked(root / f"{key}.lock"):
        entry = _open(folder)  # another process may have finished it while we waited
        if entry is not None:
            return entry
        tmp = root / f".{key}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            _write(tmp, shape, labels, fill)
            os.replace(tmp, folder)
        except OSError as exc:
            need = int(np.prod(shape)) / 1e9
            raise DataError(f"cannot write the decoded images to {root} ({exc.strerror or exc}; "
                            f"they need {need:.2f} GB); free space or set CONVSPEC_CACHE_DIR to "
                            "another folder") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"  cached in {folder}")
    entry = _open(folder)
    assert entry is not None
    return CacheEntry(entry.folder, entry.images, entry.labels, entry.kept, entry.meta, True)


def _write(tmp: Path, shape: tuple[int, int, int, int], labels: np.ndarray,
           fill: Callable[[np.ndarray], dict[str, Any]]) -> None:
    images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                       shape=shape)
    record = fill(images)
    images.flush()
    del images
    skipped = {row for row, _ in record.get("skipped", [])}
    kept = np.array([i for i in range(shape[0]) if i not in skipped], np.int64)
    np.save(tmp / "labels.npy", np.asarray(labels, np.int64))
    np.save(tmp / "kept.npy", kept)
    meta = {"format": FORMAT, "count": shape[0], "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **record}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
