"""A run's metrics: ``metrics.jsonl`` (one JSON record per logged step) and ``metrics.csv``.

Records are appended as training goes; a full disk or a killed process can tear the last one
(a final line without its newline). Reading validates every record (an object with an integer
``iteration`` >= 0; ``loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``lr`` and
``elapsed`` numbers or null; accuracies in [0, 1]; ``lr`` and ``elapsed`` >= 0) and names
the file and line of a bad one, except that

* a torn final line (no newline, not JSON) is dropped: it is what an interrupted append
  leaves, and the run's checkpoint does not depend on it;
* when resuming (``keep_until``: the checkpoint's iteration), every record after that
  iteration is dropped, whatever it holds, and so is any unreadable line after the last
  record the checkpoint covers.

No NaN or infinity is ever written (``json_safe``: they become null; JSON has no NaN).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from .atomic_files import append_text, atomic_write_text
from .errors import RunDirectoryError

METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
# loss and train_accuracy: means over the steps since the previous log line; lr: this step's
METRIC_FIELDS = ("iteration", "loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                 "elapsed")
_FRACTIONS = ("train_accuracy", "val_accuracy")


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON null), recursively
    through dicts, lists and tuples; NumPy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` of ``json_safe(value)``, never writing NaN (``allow_nan=False``)."""
    return json.dumps(json_safe(value), allow_nan=False, **options)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


def record_problem(record: Any) -> str | None:
    """What is wrong with one parsed record, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {json.dumps(record)[:60]}"
    iteration = record.get("iteration")
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        return (f"'iteration' must be an integer >= 0, got "
                f"{json.dumps(iteration) if 'iteration' in record else 'nothing'}")
    for key in METRIC_FIELDS[1:]:
        value = record.get(key)
        if value is not None and not _number(value):
            return f"{key!r} must be a number or null, got {json.dumps(value)[:60]}"
        if key in _FRACTIONS and value is not None and not 0 <= value <= 1:
            return f"{key!r} must be a fraction in [0, 1], got {value}"
        if key == "elapsed" and value is not None and value < 0:
            return f"'elapsed' must be seconds >= 0, got {value}"
        if key == "lr" and value is not None and value < 0:
            return f"'lr' must be a learning rate >= 0, got {value}"
    return None


# final.json: field -> (check, what it must be); fields may be missing (older runs)
def _fraction(value: Any) -> bool:
    return value is None or (_number(value) and 0 <= value <= 1)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_FINAL = {
    "iterations": (_count, "an integer >= 0"),
    "elapsed_seconds": (lambda v: v is None or (_number(v) and v >= 0), "seconds or null"),
    "first_step_seconds": (lambda v: v is None or (_number(v) and v >= 0), "seconds or null"),
    "val_accuracy": (_fraction, "a fraction in [0, 1] or null"),
    "backend": (lambda v: isinstance(v, str), "a string"),
    "dataset": (lambda v: isinstance(v, str), "a string"),
    "is_sample": (lambda v: isinstance(v, bool), "true or false"),
    "test": (lambda v: isinstance(v, dict) and _fraction(v.get("accuracy")) and all(
        _count(v.get(k, 0)) for k in ("correct", "total")), "an object with a fraction "
        "'accuracy' and counts 'correct' and 'total'"),
}


def final_problem(final: Any) -> str | None:
    """What is wrong with the data of a ``final.json``, or None."""
    if not isinstance(final, dict):
        return f"expected a JSON object, got {type(final).__name__}"
    for key, (check, what) in _FINAL.items():
        if key in final and not check(final[key]):
            return f"field {key!r} must be {what}, got {json.dumps(final[key])[:60]}"
    return None


def _parse(line: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        record = json.loads(line, parse_constant=lambda name: float("nan"))
    except json.JSONDecodeError as exc:
        return None, (f"not a JSON record ({exc.msg}); each line of {METRICS_JSONL} must be "
                      f"one JSON object. The file may be truncated or corrupt.")
    problem = record_problem(record)
    return (None, problem) if problem else (record, None)


def read_metrics_file(path: str | Path, *, keep_until: int | None = None,
                      text: str | None = None) -> list[dict[str, Any]]:
    """The validated records of a ``metrics.jsonl`` file (blank lines skipped; see the
    module doc for a torn last line and for ``keep_until``). Raises ``RunDirectoryError``
    naming the file and line of the first bad record."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise RunDirectoryError(f"{path}: unreadable ({exc.strerror or exc})") from None
    lines = text.split("\n")
    parsed = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, problem = _parse(line)
        torn = number == len(lines) and problem is not None  # no newline after it
        if not torn:
            parsed.append((number, record, problem))
    if keep_until is not None:
        covered = [i for i, (_, r, _p) in enumerate(parsed)
                   if r is not None and r["iteration"] <= keep_until]
        last = covered[-1] if covered else -1
        parsed = [item for i, item in enumerate(parsed) if i <= last and (
            item[1] is None or item[1]["iteration"] <= keep_until)]
    for number, _, problem in parsed:
        if problem is not None:
            raise RunDirectoryError(f"{path}:{number}: {problem}")
    return [record for _, record, _p in parsed if record is not None]


class MetricsLog:
    """One record per logged step, appended to ``metrics.jsonl`` and ``metrics.csv``.

    Opening it rewrites both files (atomically) from ``records``, which drops what a torn or
    a resumed-over tail held."""

    def __init__(self, jsonl: Path, csv_path: Path, records: list[dict[str, Any]]):
        self.jsonl, self.csv, self.records = jsonl, csv_path, records
        atomic_write_text(jsonl, "".join(dumps(r) + "\n" for r in records))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=METRIC_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(json_safe(records))
        atomic_write_text(csv_path, table.getvalue())

    def append(self, record: dict[str, Any]) -> None:
        """Append one record to both files (``FileSystemError`` naming the file when the
        disk is full or read-only; the record stays in ``records``)."""
        self.records.append(record)
        append_text(self.jsonl, dumps(record) + "\n")
        row = io.StringIO(newline="")
        csv.DictWriter(row, fieldnames=METRIC_FIELDS, extrasaction="ignore").writerow(
            json_safe(record))
        append_text(self.csv, row.getvalue())
