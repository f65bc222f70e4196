"""The IDX file format (LeCun's MNIST files): a big-endian header, then unsigned bytes.

A file is ``00 00 08 <ndim>``, ``ndim`` big-endian uint32 dimensions, then exactly
``prod(dims)`` bytes (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"). Files may be gzipped;
gzip is recognised by its magic bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a (gzipped or raw) uint8 IDX file, checking header and exact payload length.

    Returns a writable uint8 array of the header's dimensions, e.g. (60000, 28, 28).
    Raises ``DataError`` naming the file when it is unreadable, corrupt or not IDX.
    """
    path = Path(path)
    return parse_idx(read_bytes(path), path).copy()


def read_bytes(path: Path) -> bytes:
    """The file's IDX bytes, decompressed when the file is gzip (by content, not name)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    try:
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read this gzip file ({exc}); it is corrupt or truncated. "
                        "Delete it and download or copy it again.") from None


def parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """A read-only uint8 view of IDX bytes (``path`` names the file in errors); the header's
    dimensions must account for exactly the payload, so a header with huge dimensions is
    refused before anything is allocated for them."""
    def bad(why: str) -> DataError:
        return DataError(f"{path}: not a valid IDX file: {why}. Replace it with an intact copy "
                         "of the standard file.")

    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[3] not in (1, 3):
        raise bad(f"magic number 0x{raw[:4].hex()} (expected 0x00000801 for labels or "
                  "0x00000803 for images)")
    if raw[2] != 0x08:
        raise bad(f"dtype byte 0x{raw[2]:02x} (only 0x08, unsigned byte, is supported)")
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise bad("the header is truncated")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", raw[3], 4))
    expected = header + math.prod(dims)  # exact: NumPy's product of huge dims would wrap
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has extra bytes"
        raise bad(f"{what}: {len(raw) - header} payload bytes, header {dims} says "
                  f"{expected - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)
