"""Your own data as a ``Dataset``: read each set the source gives, split the rest, preprocess.

* ``folder`` and path ``csv`` sources are decoded once into the decoded-image cache
  (``convspec.data.cache``; memory-mapped afterwards), in parallel, with progress lines;
* a pixels ``csv`` is parsed once into the same cache;
* ``npz`` and ``idx`` arrays are read into memory (uint8 stays uint8).

A set the source does not give is split off its training images (``convspec.data.splits``).
Images stay stored as read; each batch is converted to float32 when drawn
(``convspec.data.preprocess.ImageArray``), so a set never has to fit in memory as float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .cache import cached_images, content_key
from .csv_table import class_indices, read_pixel_rows, source_tables
from .dataset import Dataset, Split
from .decode_pool import decode_files
from .decoder import DecodeOptions
from .fit import check_fits
from .folder import source_trees
from .preprocess import ImageArray, Preprocessing, channel_stats
from .probe import probe
from .splits import split_pool

Log = Callable[[str], None]


@dataclass
class _Set:
    """A set as read: stored images (N, H, W, C), labels (N,), the rows that count."""

    images: np.ndarray
    labels: np.ndarray
    rows: np.ndarray | None = None

    def kept_labels(self) -> np.ndarray:
        return self.labels if self.rows is None else self.labels[self.rows]


def load_source(source: Any, spec: Any, *, preprocessing: Preprocessing | None = None,
                log: Log | None = None) -> Dataset:
    """Load ``source`` (a source model with absolute paths) for ``spec``. ``preprocessing`` is
    a run's recorded one (default: from ``train.normalize``, statistics computed on the
    training split). Raises ``DataError`` naming the file or folder at fault."""
    say = log or (lambda message: None)
    summary = probe(source)
    check_fits(spec, summary)
    info: dict[str, Any] = {"content": {}, "skipped": 0, "resized": 0, "alpha_only": 0}
    sets = _READERS[source.kind](source, spec, say, info)
    given = {name for name in ("validation", "test") if name in sets}
    pool = sets["train"]
    train_idx, val_idx, test_idx = split_pool(
        pool.kept_labels(), seed=source.split_seed,
        validation=None if "validation" in given else source.validation_split,
        test=None if "test" in given else source.test_split)
    base = pool.rows if pool.rows is not None else np.arange(len(pool.labels))
    for name, idx in (("validation", val_idx), ("test", test_idx)):
        if idx is not None:
            sets[name] = _Set(pool.images, pool.labels, base[idx])
    sets["train"] = _Set(pool.images, pool.labels, base[train_idx])
    info["split"] = {"seed": source.split_seed,
                     "validation": "given" if "validation" in given else source.validation_split,
                     "test": "given" if "test" in given else source.test_split}
    scale = "1/255" if pool.images.dtype == np.uint8 else "1"
    splits = {name: _split(s, Preprocessing(scale)) for name, s in sets.items()}
    pre = _preprocessing(spec, splits["train"], scale, preprocessing)
    splits = {name: Split(s.images.with_preprocessing(pre), s.labels)
              for name, s in splits.items()}
    return Dataset(summary.name, splits["train"], splits["validation"], splits["test"],
                   summary.class_names, summary.description, is_sample=False,
                   preprocessing=pre, info=info)


def _split(s: _Set, pre: Preprocessing) -> Split:
    labels = s.kept_labels().astype(np.int64)
    return Split(ImageArray(s.images, s.rows, pre), labels)


def _preprocessing(spec: Any, train: Split, scale: str,
                   recorded: Preprocessing | None) -> Preprocessing:
    if recorded is not None:
        return Preprocessing(scale, recorded.mean, recorded.std)
    normalize = spec.train.normalize
    if normalize is None:
        return Preprocessing(scale)
    if normalize.kind == "mean_std":
        return Preprocessing(scale, tuple(normalize.mean), tuple(normalize.std))
    mean, std = channel_stats(train.images)  # type: ignore[arg-type]
    return Preprocessing(scale, mean, std)


def _options(spec: Any, source: Any) -> DecodeOptions:
    return DecodeOptions.for_spec(spec, source.resize, source.background)


def _decode_into_cache(files: tuple[str, ...], labels: list[int], where: str, spec: Any,
                       source: Any, say: Log, info: dict[str, Any]) -> _Set:
    options = _options(spec, source)
    key = content_key(files, labels, {"kind": "image-files", "height": options.height,
                                      "width": options.width, "channels": options.channels,
                                      "resize": options.resize,
                                      "background": list(options.background),
                                      "on_error": source.on_error})
    shape = (len(files), options.height, options.width, options.channels)

    def fill(images: np.ndarray) -> dict[str, Any]:
        say(f"Decoding {len(files):,} images of {where} into the cache (once; later runs "
            f"read the cache)")
        report = decode_files(files, images, options, log=say,
                              skip_unreadable=source.on_error == "skip")
        say(f"  decoded in {report.seconds:.1f} s")
        return {"source": where, "skipped": report.skipped, "resized": report.resized,
                "alpha_only": report.alpha_only, "seconds": round(report.seconds, 3)}

    entry = cached_images(key, shape, np.asarray(labels, np.int64), fill, say)
    skipped = entry.meta.get("skipped", [])
    if skipped:
        say(f"Note: {len(skipped)} unreadable image(s) of {where} left out (on_error: skip), "
            f"e.g. {skipped[0][1]}")
    info["content"][where] = key
    for field in ("resized", "alpha_only"):
        info[field] += int(entry.meta.get(field, 0))
    info["skipped"] += len(skipped)
    rows = entry.kept if len(entry.kept) < len(entry.labels) else None
    return _Set(entry.images, entry.labels, rows)


def _read_folder(source: Any, spec: Any, say: Log, info: dict[str, Any]) -> dict[str, _Set]:
    trees, _ = source_trees(source)
    return {name: _decode_into_cache(tree.files, list(tree.labels), str(tree.root), spec,
                                     source, say, info)
            for name, tree in trees.items()}


def _read_csv(source: Any, spec: Any, say: Log, info: dict[str, Any]) -> dict[str, _Set]:
    tables, names = source_tables(source)
    sets = {}
    for name, table in tables.items():
        labels, _ = class_indices(table.raw_labels, names, str(table.path))
        if table.layout == "paths":
            sets[name] = _decode_into_cache(table.files, labels, str(table.path), spec, source,
                                            say, info)
        else:
            sets[name] = _pixels_into_cache(table, labels, spec, say, info)
    return sets


def _pixels_into_cache(table: Any, labels: list[int], spec: Any, say: Log,
                       info: dict[str, Any]) -> _Set:
    i = spec.input
    shape = (len(table), i.height, i.width, i.channels)
    key = content_key([str(table.path)], [len(table)],
                      {"kind": "pixel-csv", "shape": list(shape)})

    def fill(images: np.ndarray) -> dict[str, Any]:
        say(f"Reading {len(table):,} rows of pixels from {table.path} into the cache (once)")
        done = 0
        for values in read_pixel_rows(table):
            images[done:done + len(values)] = values.reshape(-1, *shape[1:])
            done += len(values)
        return {"source": str(table.path)}

    entry = cached_images(key, shape, np.asarray(labels, np.int64), fill, say)
    info["content"][str(table.path)] = key
    return _Set(entry.images, entry.labels)


def _read_npz(source: Any, spec: Any, say: Log, info: dict[str, Any]) -> dict[str, _Set]:
    path = Path(source.path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k[:2] in ("x_", "y_")}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    sets = {}
    for name, key in (("train", "train"), ("validation", "val"), ("test", "test")):
        if f"x_{key}" not in arrays:
            continue
        x, y = arrays[f"x_{key}"], arrays[f"y_{key}"]
        if x.ndim == 3:
            x = x[..., None]
        if x.dtype != np.uint8:
            x = x.astype(np.float32, copy=False)
            low, high = float(x.min(initial=0)), float(x.max(initial=0))
            if low < 0 or high > 1 or not np.isfinite([low, high]).all():
                raise DataError(f"{path}[x_{key}]: float images must be in [0, 1], found "
                                f"{low:g}..{high:g}; store uint8 pixels (0-255) or divide by "
                                "255")
        sets[name] = _Set(np.ascontiguousarray(x), y.reshape(-1).astype(np.int64))
    if len({s.images.dtype for s in sets.values()}) > 1:
        raise DataError(f"{path}: the sets' images have different dtypes "
                        f"({', '.join(f'{k} {s.images.dtype}' for k, s in sets.items())}); "
                        "store them all as uint8 (0-255) or all as float (0-1)")
    info["content"][str(path)] = content_key([str(path)], [0], {"kind": "npz"})
    return sets


def _read_idx(source: Any, spec: Any, say: Log, info: dict[str, Any]) -> dict[str, _Set]:
    from .array_files import find_idx_files
    from .idx import read_idx

    files = find_idx_files(Path(source.path), source.prefix)
    sets = {}
    for name, role in (("train", "train"), ("test", "test")):
        images = read_idx(files[f"{role}_images"])
        if images.ndim == 3:
            images = images[..., None]
        if source.transpose:
            images = np.ascontiguousarray(images.transpose(0, 2, 1, 3))
        sets[name] = _Set(images, read_idx(files[f"{role}_labels"]).astype(np.int64))
    info["content"][str(source.path)] = content_key([str(p) for p in files.values()],
                                                    [0] * len(files), {"kind": "idx"})
    return sets


_READERS = {"folder": _read_folder, "csv": _read_csv, "npz": _read_npz, "idx": _read_idx}
