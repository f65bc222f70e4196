"""CSV sources: a header row, then one image per row, in one of two layouts.

* ``paths``: a path column (``path``, ``filename``, ``file``, ``image``, ``image_path`` or
  ``filepath``, or ``path_column``) and a label column (``label``, ``class``, ``target`` or
  ``y``, or ``label_column``); paths are relative to the CSV's folder;
* ``pixels``: a label column and one integer column per pixel value 0-255, in H, W, C order
  (the Kaggle digit-recognizer layout ``label,pixel0,...,pixel783``).

Labels are class indices when every one is an integer, else class names. Everything except
reading the pixel values (``read_pixel_rows``) is NumPy-free.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError

if TYPE_CHECKING:
    import numpy as np

PATH_COLUMNS = ("path", "filename", "file", "image", "image_path", "filepath")
LABEL_COLUMNS = ("label", "class", "target", "y")


@dataclass(frozen=True)
class CsvTable:
    """What a CSV holds, without its pixel values: the layout, the label of each row (as
    written), and the image paths (paths layout) or the pixel column count (pixels layout)."""

    path: Path
    layout: str  # "paths" or "pixels"
    raw_labels: tuple[str, ...]
    files: tuple[str, ...] = ()  # absolute, paths layout
    pixel_columns: int = 0  # pixels layout
    label_index: int = 0  # pixels layout: where the label column is

    def __len__(self) -> int:
        return len(self.raw_labels)


def _open(path: Path) -> Iterator[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            yield from csv.reader(f)
    except FileNotFoundError:
        raise DataError(f"{path}: no such CSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the CSV file ({exc})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a valid CSV file ({exc})") from None


def _pick(header: list[str], wanted: str | None, defaults: Sequence[str], what: str,
          path: Path) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in ([wanted] if wanted else defaults):
        if name.lower() in lowered:
            return lowered.index(name.lower())
    asked = f"{wanted!r}" if wanted else " or ".join(repr(d) for d in defaults)
    raise DataError(f"{path}: no {what} column {asked} in the header "
                    f"({', '.join(header[:8])}{', ...' if len(header) > 8 else ''}); name the "
                    f"column in the header or set {what}_column")


def read_table(path: str | os.PathLike[str], layout: str = "auto",
               path_column: str | None = None, label_column: str | None = None) -> CsvTable:
    """Read a CSV's header, layout, labels and (paths layout) image paths. Raises
    ``DataError`` naming the file and line for a missing column, a short row or an empty
    file."""
    path = Path(path)
    rows = _open(path)
    header = next(rows, None)
    if not header:
        raise DataError(f"{path}: the CSV file is empty; it needs a header row and one row per "
                        "image")
    if layout == "auto":
        layout = "pixels" if any(h.strip().lower() in ("pixel0", "pixel1") for h in header) \
            else "paths"
    label = _pick(header, label_column, LABEL_COLUMNS, "label", path)
    if layout == "pixels":
        return CsvTable(path, "pixels", tuple(_scan_labels(path, label, len(header))),
                        pixel_columns=len(header) - 1, label_index=label)
    column = _pick(header, path_column, PATH_COLUMNS, "path", path)
    files, labels = [], []
    base = path.parent
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) <= max(column, label):
            raise DataError(f"{path}:{line}: the row has {len(row)} column(s), the header "
                            f"{len(header)}: a column is missing")
        name = row[column].strip()
        files.append(str(base / name) if not os.path.isabs(name) else name)
        labels.append(row[label].strip())
    if not files:
        raise DataError(f"{path}: no rows after the header")
    return CsvTable(path, "paths", tuple(labels), files=tuple(files))


def _scan_labels(path: Path, label: int, columns: int) -> list[str]:
    """The label field of every row, read fast (the pixel values are parsed later)."""
    labels = []
    for line, row in enumerate(_open(path), start=1):
        if line == 1 or not row:
            continue
        if len(row) != columns:
            raise DataError(f"{path}:{line}: the row has {len(row)} column(s), the header "
                            f"{columns}: a column is missing or extra")
        labels.append(row[label].strip())
    if not labels:
        raise DataError(f"{path}: no rows after the header")
    return labels


def class_indices(raw: Sequence[str], classes: Sequence[str] | None,
                  where: str) -> tuple[list[int], tuple[str, ...]]:
    """Labels as written -> (class indices, class names). Integers are indices (names from
    ``classes``, else '0', '1', ...); other labels are names (``classes`` gives their order,
    else sorted). ``DataError`` for a negative index or a label outside ``classes``."""
    if all(re.fullmatch(r"[+-]?\d+", r) for r in raw):
        indices = [int(r) for r in raw]
        low = min(indices)
        if low < 0:
            raise DataError(f"{where}: label {low} is negative; labels are class indices "
                            "0, 1, ... or class names")
        count = max(indices) + 1
        if classes is not None:
            if count > len(classes):
                raise DataError(f"{where}: label {count - 1} is outside the {len(classes)} "
                                f"classes given ({', '.join(classes)})")
            return indices, tuple(classes)
        return indices, tuple(str(i) for i in range(count))
    names = tuple(classes) if classes is not None else tuple(sorted(set(raw)))
    position = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw) - set(position))
    if unknown:
        raise DataError(f"{where}: label(s) {', '.join(map(repr, unknown[:5]))} are not among "
                        f"the classes given ({', '.join(names)})")
    return [position[r] for r in raw], names


def read_pixel_rows(table: CsvTable, chunk: int = 8192) -> Iterator[np.ndarray]:
    """The pixel values of a pixels-layout CSV, ``chunk`` rows at a time, as uint8 (rows,
    pixel_columns) arrays. ``DataError`` naming the file and line for a value that is not an
    integer 0-255."""
    import numpy as np

    keep = [i for i in range(table.pixel_columns + 1) if i != table.label_index]
    done = 0
    with open(table.path, encoding="utf-8-sig") as f:
        f.readline()
        while done < len(table):
            try:
                values = np.loadtxt(f, delimiter=",", dtype=np.int64, usecols=keep,
                                    max_rows=min(chunk, len(table) - done), ndmin=2)
            except ValueError as exc:
                offset = done + 2  # NumPy counts rows from 0 here; the header is line 1
                text = re.sub(r"row (\d+)", lambda m, o=offset: f"line {int(m[1]) + o}",
                              str(exc))
                raise DataError(f"{table.path}: {text}; pixel values must be integers "
                                "0-255") from None
            if len(values) == 0:
                break
            bad = (values < 0) | (values > 255)
            if bad.any():
                row = int(np.flatnonzero(bad.any(axis=1))[0])
                raise DataError(f"{table.path}:{done + row + 2}: pixel value "
                                f"{int(values[bad][0])} is outside 0-255")
            done += len(values)
            yield values.astype(np.uint8)


def source_tables(source: Any) -> tuple[dict[str, CsvTable], tuple[str, ...]]:
    """The tables of a CSV source by set (``train``, and ``validation`` / ``test`` from
    ``validation_path`` / ``test_path``) and the class names; every label checked."""
    tables = {"train": read_table(source.path, source.layout, source.path_column,
                                  source.label_column)}
    for name, given in (("validation", source.validation_path), ("test", source.test_path)):
        if given is not None:
            tables[name] = read_table(given, tables["train"].layout, source.path_column,
                                      source.label_column)
    train = tables["train"]
    _, names = class_indices(train.raw_labels, source.classes, str(train.path))
    for table in list(tables.values())[1:]:
        class_indices(table.raw_labels, names, str(table.path))
        if table.layout == "pixels" and table.pixel_columns != train.pixel_columns:
            raise DataError(f"{table.path} has {table.pixel_columns} pixel columns, "
                            f"{train.path} {train.pixel_columns}")
    return tables, names
