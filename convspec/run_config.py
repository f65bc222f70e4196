"""``config.json``: how a run was made, validated field by field as it is read.

The fields a run needs to be reopened or resumed are typed (``backend``, ``device``,
``dataset``, ``data_dir``, and ``precision`` / ``compiled`` / ``data``, which older runs lack
and default; ``data`` is checked by ``convspec.data.record.DataRecord``);
everything else written at the start of a run (data source and sizes, overrides, the parallel
layout, the command, the start time, versions) is kept as recorded, for people and reports.
Only ``convspec.run_directory.RunDirectory`` reads or writes the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import RunDirectoryError

# field -> (accepted types, what to call them in an error, default or _REQUIRED)
_REQUIRED = object()
_FIELDS: dict[str, tuple[tuple[type, ...], str, Any]] = {
    "backend": ((str,), "a string", _REQUIRED),
    "device": ((str,), "a string", _REQUIRED),
    "dataset": ((str,), "a string", _REQUIRED),
    "data_dir": ((str, type(None)), "a string or null", _REQUIRED),
    "precision": ((str,), "a string", "fp32"),
    "compiled": ((bool,), "true or false", False),
    "data": ((dict, type(None)), "an object or null", None),
}
# fields with a closed set of values (the CLI's choices)
_CHOICES = {"device": ("cpu", "cuda", "auto"), "precision": ("fp32", "bf16", "fp16")}


@dataclass(frozen=True)
class RunConfig:
    """What ``config.json`` says about a run; ``record`` holds the other recorded fields."""

    backend: str
    device: str
    dataset: str
    data_dir: str | None
    precision: str = "fp32"
    compiled: bool = False
    data: Mapping[str, Any] | None = None  # convspec.data.record: source, classes, preprocessing
    record: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``config.json``."""
        return {**self.record, **{name: getattr(self, name) for name in _FIELDS}}

    @classmethod
    def from_json(cls, text: str, source: str) -> RunConfig:
        """Parse and validate ``config.json`` text; ``source`` names the file in errors.

        Raises ``RunDirectoryError`` (one line naming ``source``) when the text is not JSON,
        not an object, lacks a required field or has a field of the wrong type.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RunDirectoryError(f"{source}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise RunDirectoryError(f"{source}: expected a JSON object describing the run, got "
                                    f"a {_json_type(data)}")
        values: dict[str, Any] = {}
        for name, (types, what, default) in _FIELDS.items():
            if name not in data:
                if default is _REQUIRED:
                    raise RunDirectoryError(
                        f"{source}: missing field {name!r} (a run's config.json has "
                        f"{', '.join(n for n, f in _FIELDS.items() if f[2] is _REQUIRED)}); "
                        "is it a config.json written by convspec train?")
                values[name] = default
                continue
            value = data[name]
            if not isinstance(value, types) or (isinstance(value, str) and not value.strip()):
                raise RunDirectoryError(f"{source}: field {name!r} must be {what}, got "
                                        f"{json.dumps(value)}")
            if name in _CHOICES and value not in _CHOICES[name]:
                raise RunDirectoryError(f"{source}: field {name!r} must be one of "
                                        f"{', '.join(_CHOICES[name])}, got {json.dumps(value)}")
            values[name] = value
        if values["data"] is not None:
            from .data.record import DataRecord

            DataRecord.from_dict(values["data"], source)
        record = {k: v for k, v in data.items() if k not in _FIELDS}
        return cls(**values, record=record)

    def data_record(self) -> Any:
        """The recorded data (``convspec.data.record.DataRecord``), or None for older runs."""
        if self.data is None:
            return None
        from .data.record import DataRecord

        return DataRecord.from_dict(self.data, "config.json")


def _json_type(value: Any) -> str:
    names = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
