"""Array files read without NumPy, for the check before anything runs: IDX headers and
labels, and the members of a ``.npz`` (each a ``.npy``: magic, a header dict, raw data).

The ``.npy`` format: ``\\x93NUMPY``, major and minor version bytes, a little-endian header
length (2 bytes in version 1, 4 in versions 2 and 3), then a Python dict literal with
``descr``, ``fortran_order`` and ``shape`` (numpy.lib.format). Only the headers of image arrays
are read; labels (small) are read in full to count the classes.
"""

from __future__ import annotations

import array
import ast
import gzip
import re
import struct
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import DataError

IDX_ROLES = {  # role -> file name pattern after the prefix
    "train_images": r".*train-images-idx3-ubyte(\.gz)?",
    "train_labels": r".*train-labels-idx1-ubyte(\.gz)?",
    "test_images": r".*(t10k|test)-images-idx3-ubyte(\.gz)?",
    "test_labels": r".*(t10k|test)-labels-idx1-ubyte(\.gz)?",
}
_TYPECODES = {("i", 1): "b", ("u", 1): "B", ("b", 1): "B", ("i", 2): "h", ("u", 2): "H",
              ("i", 4): "i", ("u", 4): "I", ("i", 8): "q", ("u", 8): "Q", ("f", 4): "f",
              ("f", 8): "d"}


# --- IDX ------------------------------------------------------------------------------------

def find_idx_files(folder: Path, prefix: str = "") -> dict[str, Path]:
    """The four IDX files of an MNIST-like set in ``folder`` (names starting with ``prefix``;
    gzipped preferred). ``DataError`` when one is missing or several files match one role."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (an idx source is a folder with the four "
                        "IDX files of a dataset)")
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.startswith(prefix))
    found: dict[str, Path] = {}
    for role, pattern in IDX_ROLES.items():
        hits = [n for n in names if re.fullmatch(re.escape(prefix) + pattern, n)]
        stems = sorted({n.removesuffix(".gz") for n in hits})
        if len(stems) > 1:
            raise DataError(f"{folder}: several files could be the {role.replace('_', ' ')}: "
                            f"{', '.join(stems)}; set prefix (e.g. prefix: "
                            f"{stems[0].split('train')[0].split('t10k')[0] or '...'!r}) to "
                            "choose one set")
        if not hits:
            starting = f" starting with {prefix!r}" if prefix else ""
            raise DataError(f"{folder}: no {role.replace('_', ' ')} file{starting}; an idx "
                            "source needs *train-images-idx3-ubyte, *train-labels-idx1-ubyte, "
                            "*t10k-images-idx3-ubyte and *t10k-labels-idx1-ubyte (t10k or "
                            "test; .gz or not)")
        found[role] = folder / next((n for n in hits if n.endswith(".gz")), hits[0])
    return found


def _idx_stream(path: Path) -> BinaryIO:
    raw = open(path, "rb")  # noqa: SIM115 - returned open
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    raw.seek(0)
    return raw


def idx_dims(path: Path) -> tuple[int, ...]:
    """The dimensions in an IDX file's header (``DataError`` naming a file that is not a
    uint8 IDX file)."""
    try:
        with _idx_stream(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[:3] != b"\0\0\x08" or not 1 <= head[3] <= 4:
                raise DataError(f"{path}: not a uint8 IDX file (magic 0x{head.hex()})")
            body = f.read(4 * head[3])
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read the file ({exc})") from None
    if len(body) < 4 * head[3]:
        raise DataError(f"{path}: not a valid IDX file: the header is truncated")
    dims = struct.unpack(f">{head[3]}I", body)
    payload = 1
    for d in dims:
        payload *= d
    try:  # a raw file's size tells now whether the header is right; a gzip's, only later
        size = None if _gzipped(path) else path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc})") from None
    if size is not None and size != 4 + 4 * head[3] + payload:
        raise DataError(f"{path}: not a valid IDX file: its header says {dims}, "
                        f"{payload:,} bytes of data, but the file holds "
                        f"{size - 4 - 4 * head[3]:,}")
    return dims


def _gzipped(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def idx_labels(path: Path) -> bytes:
    """The labels of a 1-D IDX file, one byte each."""
    try:
        with _idx_stream(path) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read the file ({exc})") from None
    if data[:4] != b"\0\0\x08\x01" or len(data) < 8:
        raise DataError(f"{path}: not an IDX label file (magic 0x{data[:4].hex()})")
    (count,) = struct.unpack(">I", data[4:8])
    if len(data) != 8 + count:
        raise DataError(f"{path}: not a valid IDX file: {len(data) - 8} labels, the header "
                        f"says {count}")
    return data[8:]


# --- .npz -----------------------------------------------------------------------------------

def _npy_header(f: BinaryIO, where: str) -> tuple[tuple[int, ...], str, bool]:
    magic = f.read(8)
    if magic[:6] != b"\x93NUMPY":
        raise DataError(f"{where}: not a .npy array")
    size = struct.unpack("<H", f.read(2))[0] if magic[6] == 1 else struct.unpack(
        "<I", f.read(4))[0]
    try:
        header = ast.literal_eval(f.read(size).decode("latin1"))
        shape, descr, fortran = tuple(header["shape"]), header["descr"], header["fortran_order"]
    except (ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise DataError(f"{where}: unreadable .npy header ({exc})") from None
    if not isinstance(descr, str):
        raise DataError(f"{where}: structured arrays are not supported")
    return shape, descr, bool(fortran)


def _zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such .npz file") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None


def npz_members(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Array name -> (shape, dtype descr, e.g. '|u1' or '<f4') of every member."""
    out = {}
    with _zip(path) as z:
        for name in z.namelist():
            if name.endswith(".npy"):
                try:
                    with z.open(name) as f:
                        shape, descr, _ = _npy_header(f, f"{path}[{name[:-4]}]")
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                    raise DataError(f"{path}: member {name} is corrupt ({exc})") from None
                out[name[:-4]] = (shape, descr)
    return out


def npz_small_array(path: Path, name: str) -> list[Any]:
    """A 1-D (or (N, 1)) integer, float or unicode member as a list (labels, class names)."""
    where = f"{path}[{name}]"
    with _zip(path) as z, z.open(f"{name}.npy") as f:
        shape, descr, _ = _npy_header(f, where)
        data = f.read()
    order, kind, size = descr[0], descr[1], int(descr[2:] or 0)
    if kind == "U":  # fixed-width UTF-32
        width = 4 * size
        text = [data[i:i + width].decode("utf-32-be" if order == ">" else "utf-32-le")
                for i in range(0, len(data), width)]
        return [t.rstrip("\0") for t in text]
    code = _TYPECODES.get((kind, size))
    if code is None:
        raise DataError(f"{where}: dtype {descr} is not supported for labels; use integers")
    values = array.array(code, data)
    if size > 1 and (order == ">") != (sys.byteorder == "big"):
        values.byteswap()
    return values.tolist()
