"""convspec.run_metrics: every record validated, a torn last line (full disk, kill) dropped,
a resumed run keeping only what its checkpoint covers, and never a NaN in a JSON file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from convspec.errors import RunDirectoryError
from convspec.run_metrics import MetricsLog, dumps, json_safe, read_metrics_file


def _record(i: int, **extra) -> str:
    return json.dumps({"iteration": i, "loss": 1.0 / i, "train_accuracy": 0.5,
                       "val_accuracy": None, "elapsed": 0.1 * i, **extra})


def test_a_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(_record(1) + "\n" + _record(2) + "\n" + '{"iteration": 3, "lo')
    assert [r["iteration"] for r in read_metrics_file(path)] == [1, 2]
    path.write_text(_record(1) + "\n" + _record(2))  # complete, only the newline is missing
    assert [r["iteration"] for r in read_metrics_file(path)] == [1, 2]


def test_a_bad_line_that_is_not_the_torn_tail_names_its_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(_record(1) + "\n" + '{"iteration": 2, "lo\n' + _record(3) + "\n")
    with pytest.raises(RunDirectoryError, match=r"metrics\.jsonl:2: not a JSON record"):
        read_metrics_file(path)


@pytest.mark.parametrize(("line", "message"), [
    ('{"loss": 1.0}', "'iteration' must be an integer >= 0, got nothing"),
    ('{"iteration": "5"}', "'iteration' must be an integer >= 0, got \"5\""),
    ('{"iteration": true}', "'iteration' must be an integer >= 0, got true"),
    ('{"iteration": -1}', "'iteration' must be an integer >= 0, got -1"),
    ('{"iteration": 2.5}', "'iteration' must be an integer >= 0, got 2.5"),
    ('{"iteration": 2, "loss": "high"}', "'loss' must be a number or null, got \"high\""),
    ('{"iteration": 2, "loss": NaN}', "'loss' must be a number or null, got NaN"),
    ('{"iteration": 2, "train_accuracy": 1.5}', "'train_accuracy' must be a fraction in"),
    ('{"iteration": 2, "elapsed": -3}', "'elapsed' must be seconds >= 0, got -3"),
    ('[2]', "expected a JSON object, got [2]"),
])
def test_every_field_of_a_record_is_checked(tmp_path, line, message):
    path = tmp_path / "metrics.jsonl"
    path.write_text(_record(1) + "\n" + line + "\n")
    with pytest.raises(RunDirectoryError) as caught:
        read_metrics_file(path)
    assert f"metrics.jsonl:2: {message}" in str(caught.value)


def test_resuming_keeps_what_the_checkpoint_covers_whatever_follows(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = [_record(i) for i in (1, 2, 3)]
    after = [_record(4), '{"iteration": 5, "lo', '{"iteration": "x"}', _record(6)]
    path.write_text("\n".join(good + after) + "\n" + '{"iter')
    with pytest.raises(RunDirectoryError, match=":5: not a JSON record"):
        read_metrics_file(path)  # reading the whole file: line 5 is damaged
    assert [r["iteration"] for r in read_metrics_file(path, keep_until=3)] == [1, 2, 3]
    assert [r["iteration"] for r in read_metrics_file(path, keep_until=4)] == [1, 2, 3, 4]
    # a damaged line before a record the checkpoint covers is still an error
    path.write_text("\n".join([good[0], "garbage", good[1]]) + "\n")
    with pytest.raises(RunDirectoryError, match=":2: not a JSON record"):
        read_metrics_file(path, keep_until=3)


def test_nan_is_never_written(tmp_path):
    assert json_safe({"a": [float("nan"), np.float32("inf"), np.float64(0.5), 1],
                      "b": (math.inf,)}) == {"a": [None, None, 0.5, 1], "b": [None]}
    assert dumps({"accuracy": float("nan")}) == '{"accuracy": null}'
    log = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "metrics.csv", [])
    log.append({"iteration": 1, "loss": float("nan"), "train_accuracy": 0.5,
                "val_accuracy": float("nan"), "elapsed": 0.1})
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in text and json.loads(text)["loss"] is None
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1] == "1,,0.5,,,,0.1"


def test_opening_the_log_rewrites_a_torn_file_whole(tmp_path):
    jsonl, csv = tmp_path / "metrics.jsonl", tmp_path / "metrics.csv"
    jsonl.write_text(_record(1) + "\n" + '{"iteration": 2, "lo')
    csv.write_text("iteration,loss\n1,1.0\n2,0.")
    log = MetricsLog(jsonl, csv, read_metrics_file(jsonl, keep_until=1))
    log.append(json.loads(_record(2)))
    assert [r["iteration"] for r in read_metrics_file(jsonl)] == [1, 2]
    assert jsonl.read_text().endswith("\n")
    assert len(csv.read_text().splitlines()) == 3


@pytest.mark.parametrize(("final", "message"), [
    ([], "expected a JSON object, got list"),
    ({"iterations": "12"}, "field 'iterations' must be an integer >= 0, got \"12\""),
    ({"val_accuracy": "98%"}, "field 'val_accuracy' must be a fraction in [0, 1] or null"),
    ({"val_accuracy": 98.5}, "field 'val_accuracy' must be a fraction"),
    ({"elapsed_seconds": -1}, "field 'elapsed_seconds' must be seconds or null"),
    ({"test": {"accuracy": 0.5, "total": -3}}, "field 'test' must be an object"),
    ({"test": [0.5]}, "field 'test' must be an object"),
    ({"backend": 3}, "field 'backend' must be a string"),
])
def test_final_json_fields_are_checked(tmp_path, final, message):
    from convspec.run_directory import RunDirectory

    (tmp_path / "final.json").write_text(json.dumps(final))
    with pytest.raises(RunDirectoryError) as caught:
        RunDirectory(tmp_path).read_final()
    assert str(caught.value) == f"{tmp_path / 'final.json'}: {message}" or \
        str(caught.value).startswith(f"{tmp_path / 'final.json'}: {message}")
    (tmp_path / "final.json").write_text(json.dumps(
        {"iterations": 5, "val_accuracy": None, "test": {"accuracy": None, "total": 0},
         "extra": "kept"}))
    assert RunDirectory(tmp_path).read_final()["extra"] == "kept"
