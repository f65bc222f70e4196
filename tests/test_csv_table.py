"""convspec.data.csv_table: path and pixel layouts, labels, and the file:line of mistakes."""

from __future__ import annotations

import numpy as np
import pytest
from own_data import grey, write_path_csv, write_pixel_csv

from convspec.data.csv_table import class_indices, read_pixel_rows, read_table
from convspec.errors import DataError


def test_paths_layout_relative_to_the_csv(tmp_path):
    (tmp_path / "imgs").mkdir()
    path = write_path_csv(tmp_path / "list.csv", ["imgs/a.png", "/abs/b.png"], ["cat", "dog"],
                          header=("Filename", "Class"))
    table = read_table(path)
    assert table.layout == "paths"
    assert table.files == (str(tmp_path / "imgs" / "a.png"), "/abs/b.png")
    assert table.raw_labels == ("cat", "dog")


def test_pixels_layout_is_detected_and_read_in_chunks(tmp_path):
    images, labels = grey(7, classes=3, size=(4, 4))
    path = write_pixel_csv(tmp_path / "train.csv", images, labels)
    table = read_table(path)
    assert table.layout == "pixels" and table.pixel_columns == 16 and len(table) == 7
    chunks = list(read_pixel_rows(table, chunk=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(chunks), images.reshape(7, 16))


def test_a_missing_column_names_the_file(tmp_path):
    path = tmp_path / "nolabel.csv"
    path.write_text("path,file_size\na.png,10\n")
    with pytest.raises(DataError, match=r"nolabel.csv: no label column 'label' or 'class'"):
        read_table(path)
    path.write_text("path,label\na.png,1\nb.png\n")
    with pytest.raises(DataError, match=r"\.csv:3: the row has 1 column\(s\), the header 2: a "
                                        "column is missing"):
        read_table(path)
    images, labels = grey(3, size=(2, 2))
    pixels = write_pixel_csv(tmp_path / "px.csv", images, labels)
    lines = pixels.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0]
    pixels.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"px.csv:3: the row has 4 column\(s\), the header 5"):
        read_table(pixels)


def test_bad_pixel_values_name_the_line(tmp_path):
    images, labels = grey(5, size=(2, 2))
    path = write_pixel_csv(tmp_path / "px.csv", images, labels)
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0] + ",300"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"px.csv:5: pixel value 300 is outside 0-255"):
        list(read_pixel_rows(read_table(path), chunk=2))
    lines[4] = lines[4].rsplit(",", 1)[0] + ",x"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"px.csv: .*line 5.*integers 0-255"):
        list(read_pixel_rows(read_table(path), chunk=2))


def test_empty_files(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="the CSV file is empty"):
        read_table(path)
    path.write_text("path,label\n")
    with pytest.raises(DataError, match="no rows after the header"):
        read_table(path)
    with pytest.raises(DataError, match="no such CSV file"):
        read_table(tmp_path / "none.csv")


def test_labels_as_indices_or_names():
    assert class_indices(["2", "0", "1"], None, "f") == ([2, 0, 1], ("0", "1", "2"))
    assert class_indices(["1", "0"], ["cat", "dog", "eel"], "f") == ([1, 0],
                                                                     ("cat", "dog", "eel"))
    assert class_indices(["dog", "cat"], None, "f") == ([1, 0], ("cat", "dog"))
    assert class_indices(["dog", "cat"], ["dog", "cat"], "f") == ([0, 1], ("dog", "cat"))
    with pytest.raises(DataError, match="f: label 3 is outside the 2 classes given"):
        class_indices(["0", "3"], ["a", "b"], "f")
    with pytest.raises(DataError, match=r"label\(s\) 'eel' are not among the classes given"):
        class_indices(["eel"], ["cat", "dog"], "f")
    with pytest.raises(DataError, match="label -1 is negative"):
        class_indices(["-1", "2"], None, "f")
