"""Writers of the data layouts users bring (for the tests): class-folder PNG trees, IDX
folders, path CSVs, Kaggle pixel CSVs and keras-style .npz files, from uint8 arrays."""

from __future__ import annotations

import csv
import gzip
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def grey(n: int, classes: int = 3, size: tuple[int, int] = (8, 6),
         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 (H, W) images and int64 labels 0..classes-1 (every class present)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    return rng.integers(0, 256, (n, *size), dtype=np.uint8), labels.astype(np.int64)


def write_tree(root: Path, images: np.ndarray, labels: np.ndarray,
               names: Sequence[str] | None = None, ext: str = ".png") -> Path:
    """``root/<class name>/<index:05d><ext>`` for every image (index = position in
    ``images``, so a class's files sort in the arrays' order)."""
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / (names[label] if names else str(label))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1
                        else image).save(folder / f"{i:05d}{ext}")
    return root


def class_order(labels: np.ndarray) -> np.ndarray:
    """The order in which a class-folder tree lists the images: by class, then by index."""
    return np.argsort(labels, kind="stable")


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, np.uint8)
    return (bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.tobytes())


def write_idx(folder: Path, train: tuple[np.ndarray, np.ndarray],
              test: tuple[np.ndarray, np.ndarray], prefix: str = "") -> Path:
    """The four gzipped IDX files of an MNIST-like set."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in ((f"{prefix}train-images-idx3-ubyte", train[0]),
                        (f"{prefix}train-labels-idx1-ubyte", train[1]),
                        (f"{prefix}t10k-images-idx3-ubyte", test[0]),
                        (f"{prefix}t10k-labels-idx1-ubyte", test[1])):
        (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(array), compresslevel=1))
    return folder


def write_pixel_csv(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """The Kaggle digit-recognizer layout: ``label,pixel0,...`` then one row per image."""
    flat = images.reshape(len(images), -1)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", *(f"pixel{i}" for i in range(flat.shape[1]))])
        for label, row in zip(labels, flat):
            writer.writerow([int(label), *row.tolist()])
    return path


def write_path_csv(path: Path, files: Sequence[str], labels: Sequence[object],
                   header: Sequence[str] = ("path", "label")) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([file, label] for file, label in zip(files, labels))
    return path
