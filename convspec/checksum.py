"""Content checksums of safetensors files: a flipped byte is refused, not loaded.

``content_checksum`` is the SHA-256 of a file's metadata (canonical JSON, without the checksum
itself) and of every tensor (name, dtype, shape and raw little-endian bytes, in name order).
Weights files and checkpoints store it as the metadata entry ``sha256``; ``verify_checksum``
recomputes it on load. Files written before the checksum existed have no entry and still load
(they are checked for names, shapes, dtypes and finite values only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

from .errors import WeightsError

CHECKSUM_KEY = "sha256"


def content_checksum(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    """The hex SHA-256 of ``metadata`` (without ``CHECKSUM_KEY``) and ``arrays``."""
    digest = hashlib.sha256()
    meta = {k: v for k, v in metadata.items() if k != CHECKSUM_KEY}
    digest.update(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(json.dumps([name, little.dtype.str, list(array.shape)]).encode())
        digest.update(little.tobytes())
    return digest.hexdigest()


def with_checksum(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]
                  ) -> dict[str, str]:
    """``metadata`` plus its ``sha256`` entry for ``arrays``."""
    return {**metadata, CHECKSUM_KEY: content_checksum(arrays, metadata)}


def verify_checksum(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str],
                    source: str) -> bool:
    """True when ``metadata`` holds a checksum and it matches (False: a file from before
    checksums); ``WeightsError`` naming ``source`` when it does not match."""
    stored = metadata.get(CHECKSUM_KEY)
    if stored is None:
        return False
    if stored != content_checksum(arrays, metadata):
        raise WeightsError(f"{source}: its content does not match its SHA-256 checksum; the "
                           f"file is damaged (a changed byte), so it is not loaded. Use an "
                           f"intact copy (or retrain)")
    return True
