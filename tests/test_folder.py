"""convspec.data.folder: class-folder trees read in ImageFolder's order, and their mistakes."""

from __future__ import annotations

import pytest
from own_data import grey, write_tree

from convspec.data.folder import read_class_tree, source_trees, split_folders
from convspec.errors import DataError
from convspec.specification.data_source import FolderSource


def _source(path, **options):
    return FolderSource(kind="folder", path=str(path), **options)


def test_classes_sorted_files_sorted_recursively(tmp_path):
    images, labels = grey(9, classes=3)
    write_tree(tmp_path, images, labels, names=["dog", "cat", "ant"])
    nested = tmp_path / "cat" / "more"
    nested.mkdir()
    (nested / "0.png").write_bytes((tmp_path / "cat" / next(
        p.name for p in (tmp_path / "cat").glob("*.png"))).read_bytes())
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / ".hidden.png").write_text("ignored")
    (tmp_path / ".git").mkdir()
    tree = read_class_tree(tmp_path)
    assert tree.class_names == ("ant", "cat", "dog")
    assert tree.ignored == 1
    cats = [f for f, label in zip(tree.files, tree.labels) if label == 1]
    assert cats[-1].endswith("cat/more/0.png") and cats[:-1] == sorted(cats[:-1])
    assert list(tree.labels) == sorted(tree.labels)
    assert len(tree) == 10 and len(tree.first_of_each_class()) == 3


def test_the_classes_option_orders_and_must_match(tmp_path):
    images, labels = grey(6, classes=2)
    write_tree(tmp_path, images, labels, names=["a", "b"])
    assert read_class_tree(tmp_path, ["b", "a"]).class_names == ("b", "a")
    with pytest.raises(DataError, match=r"must name exactly the class folders .*: a, b"):
        read_class_tree(tmp_path, ["a", "c"])


def test_an_empty_class_folder_is_an_error_naming_it(tmp_path):
    images, labels = grey(4, classes=2)
    write_tree(tmp_path, images, labels)
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "readme.md").write_text("no images")
    with pytest.raises(DataError, match=rf"class folder {tmp_path / '2'} holds no images"):
        read_class_tree(tmp_path)


def test_missing_flat_and_file_roots(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_class_tree(tmp_path / "nope")
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="has no class folders"):
        read_class_tree(tmp_path)
    with pytest.raises(DataError, match="is a file, not a folder"):
        read_class_tree(tmp_path / "a.png")


def test_train_val_test_trees(tmp_path):
    images, labels = grey(12, classes=3)
    for split in ("train", "val", "test"):
        write_tree(tmp_path / split, images, labels, names=["x", "y", "z"])
    assert set(split_folders(tmp_path)) == {"train", "validation", "test"}
    trees, description = source_trees(_source(tmp_path))
    assert set(trees) == {"train", "validation", "test"}
    assert description == f"folder {tmp_path} (test/, train/, val/)"
    assert all(t.class_names == ("x", "y", "z") for t in trees.values())
    plain = tmp_path / "train"
    assert split_folders(plain) is None  # class folders, not split folders


def test_a_test_class_the_training_images_lack(tmp_path):
    images, labels = grey(6, classes=3)
    write_tree(tmp_path / "train", images[labels < 2], labels[labels < 2])
    write_tree(tmp_path / "test", images, labels)
    with pytest.raises(DataError, match=r"class folder\(s\) 2 that the training images do not"):
        source_trees(_source(tmp_path))


def test_test_path_and_both_validation_names(tmp_path):
    images, labels = grey(6, classes=2)
    write_tree(tmp_path / "mine", images, labels)
    write_tree(tmp_path / "held-out", images[:2], labels[:2])
    trees, _ = source_trees(_source(tmp_path / "mine", test_path=str(tmp_path / "held-out")))
    assert len(trees["test"]) == 2
    for name in ("train", "val", "validation"):
        write_tree(tmp_path / "both" / name, images, labels)
    with pytest.raises(DataError, match="both val/ and validation/"):
        split_folders(tmp_path / "both")
    write_tree(tmp_path / "split" / "train", images, labels)
    write_tree(tmp_path / "split" / "test", images, labels)
    with pytest.raises(DataError, match="has a test tree and test_path is given too"):
        source_trees(_source(tmp_path / "split", test_path=str(tmp_path / "held-out")))
