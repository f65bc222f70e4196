"""Stratified, seeded splits: how a source without its own validation or test set is divided.

From the pool of training images (N of them), ``round(test_split x N)`` are drawn for the test
set, then ``round(validation_split x N)`` of the rest for validation, each in proportion to the
class sizes (largest remainder), with ``numpy.random.default_rng(split_seed)``; train is what
is left. Every set keeps the source's order. The same images, fractions and seed always give
the same split, on every machine.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def stratified(labels: np.ndarray, pool: np.ndarray, n: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n`` of ``pool`` in proportion to class sizes (largest remainder); (picked, rest),
    both sorted index arrays."""
    classes, counts = np.unique(labels[pool], return_counts=True)
    exact = counts * n / counts.sum()
    quota = np.floor(exact).astype(int)
    quota[np.argsort(quota - exact, kind="stable")[: n - quota.sum()]] += 1
    picked = np.concatenate([rng.permutation(pool[labels[pool] == c])[:q]
                             for c, q in zip(classes, quota, strict=True)] + [np.empty(0, int)])
    return np.sort(picked), np.setdiff1d(pool, picked)


def split_pool(labels: np.ndarray, *, validation: float | None, test: float | None,
               seed: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(train, validation, test) index arrays into ``labels``; a fraction of None means the
    source gives that set itself (its entry is None). ``DataError`` when a set would be empty
    while the training images are too few."""
    n = len(labels)
    pool = np.arange(n)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray | None] = {"test": None, "validation": None}
    for name, fraction in (("test", test), ("validation", validation)):
        if fraction is None:
            continue
        count = int(fraction * n + 0.5)
        if count >= len(pool):
            raise DataError(f"{name}_split {fraction} of {n} images leaves no training images")
        out[name], pool = stratified(labels, pool, count, rng)
    return pool, out["validation"], out["test"]
