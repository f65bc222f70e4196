"""Real full and read-only file systems for tests (tests run as root, so ``chmod`` cannot
make a folder unwritable): a small tmpfs fills up, a read-only bind mount refuses writes.
Each skips the calling test where mounting is not permitted (no CAP_SYS_ADMIN)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def full_disk(path: Path, size_kb: int = 64) -> Iterator[Path]:
    """``path`` as an empty tmpfs of ``size_kb`` kilobytes: writes beyond that fail with
    ENOSPC."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path))
    try:
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """``path`` (an existing folder, with its files) mounted read-only over itself: every
    write in it fails with EROFS until the block ends."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,ro,bind", str(path))
    except BaseException:
        _umount(path)
        raise
    try:
        yield path
    finally:
        _umount(path)


def fill(folder: Path) -> None:
    """Fill the file system of ``folder`` up to its last byte."""
    with open(folder / "filler", "wb", buffering=0) as f:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while f.write(b"\0" * size):
                    pass


@contextlib.contextmanager
def simulated_read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Iterator[Path]:
    """Where no file system can be mounted: every way convspec creates or appends to a file
    (``tempfile.mkstemp``, ``open`` for appending, ``os.access`` asked first) fails with
    EROFS inside ``folder``, as on a read-only mount."""
    import builtins
    import errno
    import os
    import tempfile

    inside = str(folder.resolve())

    def under(path: object) -> bool:
        return str(Path(str(path)).resolve()).startswith(inside)

    def refuse(path: object) -> OSError:
        return OSError(errno.EROFS, "Read-only file system", str(path))

    real_mkstemp, real_open, real_access = tempfile.mkstemp, builtins.open, os.access

    def mkstemp(*args, dir=None, **kwargs):  # noqa: A002 -- tempfile's own name
        if dir is not None and under(dir):
            raise refuse(Path(dir) / "tmp")
        return real_mkstemp(*args, dir=dir, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and isinstance(file, str | Path) and under(file):
            raise refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and under(path):
            return False
        return real_access(path, mode, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "mkstemp", mkstemp)
        patch.setattr(builtins, "open", open_)
        patch.setattr(os, "access", access)
        yield folder
