"""Class-folder trees: one sub-folder per class, read as torchvision's ``ImageFolder`` does.

Class names are the sub-folder names, sorted (or in the order of the source's ``classes``);
a class's label is its position. Each class folder is walked recursively (symbolic links
followed), folders and files in sorted order, keeping files with an image extension
(``convspec.data.decoder.IMAGE_EXTENSIONS``); other files are counted and ignored. A source
folder may instead hold ``train/``, ``val/`` (or ``validation/``) and ``test/`` trees.
NumPy-free, so ``convspec validate`` can list a tree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from .decoder import IMAGE_EXTENSIONS, is_image_file

SPLIT_FOLDERS = {"train": "train", "val": "validation", "validation": "validation",
                 "test": "test"}


@dataclass(frozen=True)
class ClassTree:
    """The images of one class-folder tree: absolute paths and labels, in reading order."""

    root: Path
    class_names: tuple[str, ...]
    files: tuple[str, ...]
    labels: tuple[int, ...]
    ignored: int  # files without an image extension

    def __len__(self) -> int:
        return len(self.files)

    def first_of_each_class(self) -> list[str]:
        seen: dict[int, str] = {}
        for path, label in zip(self.files, self.labels):
            seen.setdefault(label, path)
        return list(seen.values())


def _subfolders(root: Path) -> list[str]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"{root}: cannot list the folder ({exc.strerror or exc})") from None
    return [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]


def split_folders(root: Path) -> dict[str, Path] | None:
    """``{"train": ..., "validation": ..., "test": ...}`` (those present) when ``root`` holds
    a ``train/`` tree and nothing but split folders; None for a plain class-folder tree."""
    names = _subfolders(root)
    if "train" not in names or not set(names) <= set(SPLIT_FOLDERS):
        return None
    if "val" in names and "validation" in names:
        raise DataError(f"{root} has both val/ and validation/; keep one validation tree")
    return {SPLIT_FOLDERS[n]: root / n for n in names}


def read_class_tree(root: str | os.PathLike[str], classes: Sequence[str] | None = None, *,
                    known: Sequence[str] | None = None) -> ClassTree:
    """List a class-folder tree. ``classes`` orders (and must name exactly) its class folders;
    ``known`` (the training tree's classes, for a validation or test tree) is the list its
    folders must come from. Raises ``DataError`` naming the folder when it is missing, has no
    class folders, has a class folder without images, or has classes outside ``known``."""
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(f"{root} {what}; a folder source is a folder with one sub-folder of "
                        "images per class")
    found = _subfolders(root)
    if not found:
        raise DataError(f"{root} has no class folders: put the images of each class in a "
                        f"sub-folder named after it (e.g. {root}/cat/1.png, {root}/dog/2.png)")
    if known is not None:
        stray = sorted(set(found) - set(known))
        if stray:
            raise DataError(f"{root} has class folder(s) {', '.join(stray)} that the training "
                            f"images do not have (classes: {', '.join(known)})")
        names = tuple(known)
    elif classes is not None:
        if sorted(classes) != sorted(found) or len(set(classes)) != len(classes):
            raise DataError(f"classes {list(classes)} must name exactly the class folders of "
                            f"{root}: {', '.join(found)}")
        names = tuple(classes)
    else:
        names = tuple(found)
    files: list[str] = []
    labels: list[int] = []
    ignored = 0
    for label, name in enumerate(names):
        if name not in found:
            continue  # a validation or test tree without this class
        images, skipped = _walk(root / name)
        ignored += skipped
        if not images:
            raise DataError(f"class folder {root / name} holds no images (looked for "
                            f"{', '.join(IMAGE_EXTENSIONS)}); remove it or add its images")
        files += images
        labels += [label] * len(images)
    return ClassTree(root, names, tuple(files), tuple(labels), ignored)


def _walk(folder: Path) -> tuple[list[str], int]:
    """Image files under ``folder`` in torchvision's order, and the count of other files."""
    images, ignored, walked = [], 0, []
    for here, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        walked.append((here, names))
    for here, names in sorted(walked):
        for name in sorted(names):
            if is_image_file(name):
                images.append(os.path.join(here, name))
            elif not name.startswith("."):
                ignored += 1
    return images, ignored


def source_trees(source: Any) -> tuple[dict[str, ClassTree], str]:
    """The trees of a folder source by set (``train``, and ``validation`` / ``test`` when it
    gives them: sub-trees or ``validation_path`` / ``test_path``) and a description."""
    root = Path(source.path)
    layout = split_folders(root) if root.is_dir() else None
    paths = dict(layout or {"train": root})
    for name, given in (("validation", source.validation_path), ("test", source.test_path)):
        if given is not None:
            if name in paths:
                raise DataError(f"{root} has a {name} tree and {name}_path is given too; "
                                "keep one")
            paths[name] = Path(given)
    trees = {"train": read_class_tree(paths["train"], source.classes)}
    for name in ("validation", "test"):
        if name in paths:
            trees[name] = read_class_tree(paths[name], known=trees["train"].class_names)
    folders = f" ({', '.join(f'{p.name}/' for p in layout.values())})" if layout else ""
    return trees, f"folder {root}{folders}"
