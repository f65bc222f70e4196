"""Where the data is: ``--data PATH`` turned into a source, relative paths made absolute.

``--data PATH`` picks the kind from what PATH is: a ``.csv`` file, a ``.npz`` file, a folder
with IDX files (``idx``), or any other folder (``folder``). It keeps the spec's own source
options that apply to any data (split fractions and seed; for image files, resize, background
and on_error). Relative paths in the spec are relative to the spec file's folder, on the
command line to the current folder; a run directory records them absolute, so ``evaluate``,
``plot``, ``report`` and ``--resume`` find the same data from anywhere. NumPy-free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UsageError

PATH_FIELDS = ("path", "test_path", "validation_path")
KEPT = ("validation_split", "test_split", "split_seed")
KEPT_FOR_FILES = ("resize", "background", "on_error")


def source_kind(path: Path) -> str:
    """The source kind of ``path`` (``UsageError`` when it is none of them)."""
    import re

    from .array_files import IDX_ROLES

    if path.is_dir():
        idx = re.compile("|".join(IDX_ROLES.values()))
        if any(idx.fullmatch(p.name) for p in path.iterdir() if p.is_file()):
            return "idx"
        return "folder"
    if not path.exists():
        raise UsageError(f"--data {path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".npz"):
        return suffix[1:]
    raise UsageError(f"--data {path}: not a folder, a .csv or a .npz file; give a folder of "
                     "class folders, a folder of IDX files, a CSV (image paths and labels, or "
                     "label and pixel columns) or a .npz (x_train, y_train, x_test, y_test)")


def source_for_path(path: str | os.PathLike[str], like: Any = None) -> dict[str, Any]:
    """The source mapping for ``--data PATH`` (relative to the current folder), keeping the
    options of ``like`` (the spec's own source model, if any) that still apply."""
    where = Path(path).expanduser().absolute()
    kind = source_kind(where)
    mapping: dict[str, Any] = {"kind": kind, "path": str(where)}
    if like is not None and not isinstance(like, str):
        old = like.model_dump(exclude_none=True)
        keep = KEPT + (KEPT_FOR_FILES if kind in ("folder", "csv") else ())
        mapping.update({k: v for k, v in old.items() if k in keep})
    return mapping


def absolute_source(dataset: Any, base: str | os.PathLike[str] | None) -> Any:
    """``train.dataset`` as plain data with its paths absolute (relative to ``base``, the spec
    file's folder, or the current folder); built-in names unchanged."""
    if isinstance(dataset, str):
        return dataset
    data = dataset if isinstance(dataset, dict) else dataset.model_dump(exclude_none=True)
    root = Path(base) if base is not None else Path.cwd()
    out = dict(data)
    for key in PATH_FIELDS:
        if out.get(key) is not None:
            out[key] = str((root / Path(out[key]).expanduser()).absolute())
    return out


def with_data(spec: Any, *, spec_dir: str | os.PathLike[str] | None = None,
              data: str | os.PathLike[str] | None = None) -> Any:
    """``spec`` with ``train.dataset`` resolved: the source of ``--data`` when given, else the
    spec's own with absolute paths. Returns the same spec when nothing changes."""
    dataset = spec.train.dataset
    if data is not None:
        new: Any = source_for_path(data, dataset)
    else:
        new = absolute_source(dataset, spec_dir)
    if isinstance(new, str):
        return spec
    where = "--data" if data is not None else f"{spec.name} (train.dataset {new['path']})"
    return spec.override({"train.dataset": new}, source=where)
