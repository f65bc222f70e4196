"""Own-data loading: decoding 60,000 PNGs into the cache, and the loader against training.

    python benchmarks/data_loading.py --data-dir ../shared/data/mnist [--tree /tmp/mnist-png]

1. writes MNIST's 60,000 training images as a class-folder PNG tree (once; ``--tree`` keeps
   it for later runs);
2. decodes the tree into an empty cache with 1 worker and with every available core, timing
   each (listing, hashing the file stats, decoding, writing the .npy);
3. opens the cached entry again (memory-mapped) and times that;
4. times the loader (the trainer's sampler drawing indices, gathering a batch of 64 from the
   memory-mapped file and converting it to float32) against the training step of the
   tutorial network (torch backend, batch 64), and prints the ratio.

The machine's load average is printed with the figures: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_tree(data_dir: Path, tree: Path) -> None:
    from PIL import Image

    from convspec.data.idx import read_idx

    images = read_idx(data_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(data_dir / "train-labels-idx1-ubyte.gz")
    began = time.perf_counter()
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = tree / "train" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    print(f"wrote {len(images):,} PNGs in {time.perf_counter() - began:.1f} s (not timed below)")


def decode(spec, tree: Path, workers: int | None) -> tuple[float, object]:
    """Seconds to load the tree into an empty cache with ``workers`` decoding processes."""
    from convspec.data import decode_pool, load_data
    from convspec.data.resolve import with_data

    cache = Path(tempfile.mkdtemp(prefix="convspec-bench-cache-"))
    os.environ["CONVSPEC_CACHE_DIR"] = str(cache)
    real = decode_pool.available_cpus
    decode_pool.available_cpus = (lambda: workers) if workers else real  # type: ignore[assignment]
    try:
        began = time.perf_counter()
        data = load_data(with_data(spec, data=tree / "train"), log=lambda m: None)
        return time.perf_counter() - began, (cache, data)
    finally:
        decode_pool.available_cpus = real  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--tree", help="where the PNG tree is (or is written and kept)")
    parser.add_argument("--steps", type=int, default=60, help="training steps timed")
    args = parser.parse_args()
    from convspec.data.decode_pool import available_cpus
    from convspec.specification import load_spec

    spec = load_spec(ROOT / "specs" / "mnist.yaml")
    tree = Path(args.tree) if args.tree else Path(tempfile.mkdtemp(prefix="mnist-png-"))
    if not (tree / "train").is_dir():
        write_tree(Path(args.data_dir), tree)
    print(f"load average before: {os.getloadavg()}")
    cpus = available_cpus()
    timings = {}
    for workers in (1, cpus):
        seconds, (cache, data) = decode(spec, tree, workers)
        timings[workers] = seconds
        print(f"decode 60,000 PNGs, {workers} worker(s): {seconds:.1f} s "
              f"({60000 / seconds:,.0f} images/s)")
        if workers != cpus:
            shutil.rmtree(cache)
    from convspec.data import load_data
    from convspec.data.resolve import with_data

    began = time.perf_counter()
    data = load_data(with_data(spec, data=tree / "train"), log=lambda m: None)
    print(f"open the cached entry (memory-mapped): {time.perf_counter() - began:.2f} s")
    loader_rate = batches_per_second(spec, data)
    step_rate = steps_per_second(spec, data, args.steps)
    print(f"loader: {loader_rate:,.0f} batches/s of 64; training: {step_rate:,.1f} steps/s; "
          f"the loader is {loader_rate / step_rate:,.0f}x the training rate")
    print(f"load average after: {os.getloadavg()}")
    shutil.rmtree(cache)
    if not args.tree:
        shutil.rmtree(tree)


def batches_per_second(spec, data, seconds: float = 3.0) -> float:
    from convspec.train.sampler import BatchSampler

    sampler = BatchSampler(len(data.train), 64, 0)
    train = data.train
    n, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        idx = sampler.next()
        x, y = train.images[idx], train.labels[idx]
        assert x.dtype == np.float32 and len(y) == 64
        n += 1
    return n / (time.perf_counter() - began)


def steps_per_second(spec, data, steps: int) -> float:
    import convspec

    model = convspec.compile(spec, backend="torch")
    x, y = np.asarray(data.train.images[:64]), data.train.labels[:64]
    for _ in range(5):
        model.train_step(x, y)
    began = time.perf_counter()
    for _ in range(steps):
        model.train_step(x, y)
    return steps / (time.perf_counter() - began)


if __name__ == "__main__":
    main()
