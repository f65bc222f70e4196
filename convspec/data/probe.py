"""A cheap look at a data source, before anything runs: image size, channels, classes, sizes.

``probe`` reads what it can without decoding the data: the catalog for a built-in dataset; the
folder listing and the header of the first image of each class for a folder; the header,
labels and first image header of a CSV; the array headers and labels of a ``.npz``; the IDX
headers and labels. ``convspec.data.fit`` compares the result with the spec. NumPy-free, so
``convspec validate --data`` stays light (and a built-in dataset's probe imports no reader).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from .catalog import get_dataset_info

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class ImageSample:
    """One image file's header, as probed."""

    path: str
    width: int
    height: int
    colour: bool


@dataclass(frozen=True)
class DataSummary:
    """What a source holds, as far as the spec is concerned.

    ``shape`` is (H, W, C) of array data, None for image files (each file is checked, and
    converted to the spec's channels) and for a pixels CSV (``pixels`` values per row).
    ``sizes`` counts the images of each set the source gives (``train`` is the pool the
    other sets are split from when the source does not give them).
    """

    kind: str  # builtin, folder, csv, npz, idx
    name: str
    description: str
    class_names: tuple[str, ...]
    sizes: dict[str, int]
    shape: tuple[int, int, int] | None = None
    pixels: int | None = None
    samples: tuple[ImageSample, ...] = ()
    resize: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """One line: what, where, how many, which classes."""
        names = ", ".join(self.class_names[:6]) + (", ..." if len(self.class_names) > 6 else "")
        given = ", ".join(f"{k} {v:,}" for k, v in self.sizes.items())
        return (f"{self.description}: {given} images; {len(self.class_names)} classes "
                f"({names})")


def probe(dataset: Any, *, data_dir: str | None = None) -> DataSummary:
    """Probe ``train.dataset`` (a built-in name or a source model with absolute paths).
    Raises ``DataError`` naming the file or folder that is missing or unusable."""
    if isinstance(dataset, str):
        info = get_dataset_info(dataset)
        where = f" (from {data_dir})" if data_dir else ""
        return DataSummary("builtin", info.name, f"{info.title}{where}", info.class_names,
                           {}, shape=info.image_shape)
    return _PROBES[dataset.kind](dataset)


def _folder(source: Any) -> DataSummary:
    from .folder import source_trees

    trees, description = source_trees(source)
    train = trees["train"]
    ignored = sum(tree.ignored for tree in trees.values())
    notes = (f"{ignored} file(s) without an image extension were ignored",) if ignored else ()
    return DataSummary("folder", Path(source.path).name, description, train.class_names,
                       {k: len(t) for k, t in trees.items()},
                       samples=_samples(train.first_of_each_class(), source),
                       resize=source.resize,
                       notes=notes)


def _samples(paths: list[str], source: Any) -> tuple[ImageSample, ...]:
    """The headers of ``paths``; unreadable ones are errors, or left out under
    ``on_error: skip`` (decoding counts them)."""
    from .decoder import image_header

    out = []
    for path in paths:
        try:
            header = image_header(path)
        except DataError:
            if source.on_error == "skip":
                continue
            raise
        out.append(ImageSample(path, header.width, header.height, header.is_colour))
    return tuple(out)


def _csv(source: Any) -> DataSummary:
    from .csv_table import class_indices, source_tables

    tables, names = source_tables(source)
    train = tables["train"]
    sizes = {k: len(t) for k, t in tables.items()}
    if train.layout == "pixels":
        return DataSummary("csv", train.path.stem, f"CSV {train.path} (label and pixel columns)",
                           names, sizes, pixels=train.pixel_columns)
    firsts: dict[int, str] = {}
    indices, _ = class_indices(train.raw_labels, names, str(train.path))
    for file, label in zip(train.files, indices):
        firsts.setdefault(label, file)
    return DataSummary("csv", train.path.stem, f"CSV {train.path} (image paths and labels)",
                       names, sizes, samples=_samples(list(firsts.values()), source),
                       resize=source.resize)


def _npz(source: Any) -> DataSummary:
    from .array_files import npz_members, npz_small_array

    path = Path(source.path)
    members = npz_members(path)
    sets = {"train": "train", "validation": "val", "test": "test"}
    for split, key in sets.items():
        x, y = f"x_{key}", f"y_{key}"
        if (x in members) != (y in members) or (split == "train" and x not in members):
            missing = x if x not in members else y
            raise DataError(f"{path} has no array {missing!r}; a .npz source holds x_train and "
                            f"y_train, and optionally x_test / y_test and x_val / y_val "
                            f"(it has: {', '.join(sorted(members)) or 'nothing'})")
    shape, sizes, labels = None, {}, []
    for split, key in sets.items():
        if f"x_{key}" not in members:
            continue
        xs, descr = members[f"x_{key}"]
        ys = members[f"y_{key}"][0]
        where = f"{path}[x_{key}]"
        if len(xs) not in (3, 4) or descr[1:] not in ("u1", "f4", "f8", "f2"):
            raise DataError(f"{where}: images must be (N, H, W) or (N, H, W, C) uint8 (0-255) or "
                            f"float (0-1); got shape {xs} and dtype {descr}")
        this = (xs[1], xs[2], xs[3] if len(xs) == 4 else 1)
        if shape is not None and this != shape:
            raise DataError(f"{where}: {_hwc(this)} images, x_train has {_hwc(shape)}")
        shape = this
        if ys[:1] != xs[:1] or len(ys) not in (1, 2) or (len(ys) == 2 and ys[1] != 1):
            raise DataError(f"{path}[y_{key}]: labels must be ({xs[0]},) or ({xs[0]}, 1) for "
                            f"{xs[0]} images; got shape {ys}")
        sizes[split] = xs[0]
        labels.append((f"{path}[y_{key}]", npz_small_array(path, f"y_{key}")))
    classes = source.classes
    if classes is None and "class_names" in members:
        classes = [str(c) for c in npz_small_array(path, "class_names")]
    names = _integer_classes(labels, classes)
    return DataSummary("npz", path.stem, f".npz {path}", names, sizes, shape=shape)


def _integer_classes(labels: list[tuple[str, list[Any]]],
                     classes: list[str] | None) -> tuple[str, ...]:
    top = -1
    for where, values in labels:
        for v in values:
            if v != int(v) or v < 0:
                raise DataError(f"{where}: label {v!r} is not a class index 0, 1, ...")
        top = max(top, int(max(values, default=-1)))
        if classes is not None and top >= len(classes):
            raise DataError(f"{where}: label {top} is outside the {len(classes)} classes given "
                            f"({', '.join(classes)})")
    return tuple(classes) if classes is not None else tuple(str(i) for i in range(top + 1))


def _idx(source: Any) -> DataSummary:
    from .array_files import find_idx_files, idx_dims, idx_labels

    folder = Path(source.path)
    files = find_idx_files(folder, source.prefix)
    shape, sizes, labels = None, {}, []
    for split, role in (("train", "train"), ("test", "test")):
        dims = idx_dims(files[f"{role}_images"])
        if len(dims) not in (3, 4):
            raise DataError(f"{files[f'{role}_images']}: images must be (N, H, W) or (N, H, W, "
                            f"C); the header says {dims}")
        h, w = (dims[2], dims[1]) if source.transpose else (dims[1], dims[2])
        this = (h, w, dims[3] if len(dims) == 4 else 1)
        if shape is not None and this != shape:
            raise DataError(f"{files['test_images']}: {_hwc(this)} images, the training "
                            f"images are {_hwc(shape)}")
        shape = this
        values = idx_labels(files[f"{role}_labels"])
        if len(values) != dims[0]:
            raise DataError(f"{files[f'{role}_labels']}: {len(values)} labels for "
                            f"{dims[0]} images in {files[f'{role}_images'].name}")
        sizes[split] = dims[0]
        labels.append((str(files[f"{role}_labels"]), list(values)))
    names = _integer_classes(labels, source.classes)
    return DataSummary("idx", folder.name, f"IDX files {folder}", names, sizes, shape=shape)


def _hwc(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


_PROBES = {"folder": _folder, "csv": _csv, "npz": _npz, "idx": _idx}
