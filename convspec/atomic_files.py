"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The content goes to a fresh temporary name in the destination's folder (same file system),
is flushed to disk, then moved onto the destination in one ``os.replace``. The temporary name
is ``.<name>.<pid>.<random>.tmp``: a process killed while writing (``kill -9`` during a
checkpoint) leaves it behind, and ``remove_stale_temporaries`` removes those whose process is
gone the next time the folder is used. Every OS error (a full disk, a read-only file system,
a permission) becomes a one-line ``FileSystemError`` naming the destination.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import FileSystemError, os_error_message

# .<name>.<pid>.<random>.tmp (this module's), and the names used before the pid was in them:
# .<name>.<random>.tmp (mkstemp) and .<name>.tmp (weights files)
_TEMPORARY = re.compile(r"^\.(?P<name>.+?)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_LEGACY = re.compile(r"^\.(?P<name>.+?)(\.[a-z0-9_]{8})?\.tmp$")


def write_error(exc: OSError, path: Path | str, doing: str = "cannot write") -> FileSystemError:
    """``exc`` as a ``FileSystemError`` naming ``path`` (not a temporary name)."""
    return FileSystemError(os_error_message(OSError(exc.errno, exc.strerror or str(exc),
                                                    str(path)), doing))


def check_writable(folder: Path, target: Path | str, doing: str = "cannot write") -> None:
    """``FileSystemError`` naming ``target`` unless files can be made in ``folder`` (an
    existing directory): asked before work whose result could then not be written."""
    if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
        return
    if not folder.is_dir():
        code, reason = errno.ENOTDIR, "Not a directory"
    elif _read_only(folder):
        code, reason = errno.EROFS, "Read-only file system"
    else:
        code, reason = errno.EACCES, "Permission denied"
    raise FileSystemError(os_error_message(OSError(code, reason, str(target)), doing))


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def temporary_name(path: Path) -> str:
    """The prefix of a temporary file for ``path``: ``.<name>.<pid>.``."""
    return f".{path.name}.{os.getpid()}."


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file next to ``path``, then move it onto
    ``path`` (creating the folder); the temporary file never outlives the call. Raises
    ``FileSystemError`` naming ``path`` when the disk is full, read-only, not permitted..."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temporary_name(path), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path) from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(exc, path) from None
    except Exception as exc:  # writers in other languages (safetensors) wrap the OS error
        code = _os_error_code(exc)
        if code is None:
            raise
        raise write_error(OSError(code, os.strerror(code)), path) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _os_error_code(exc: Exception) -> int | None:
    """The errno in a wrapped OS error's message (Rust's ``... (os error 28)``), or None."""
    match = re.search(r"\(os error (\d+)\)", str(exc))
    return int(match[1]) if match else None


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def append_text(path: Path, text: str) -> None:
    """Append ``text`` (whole lines) to ``path``; ``FileSystemError`` naming it on failure.
    A failure can leave a torn last line: readers of appended files drop one."""
    try:
        with open(path, "a", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as exc:
        raise write_error(exc, path) from None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep its files
    return True


def remove_stale_temporaries(folder: Path, *, legacy: tuple[str, ...] = ()) -> list[Path]:
    """Remove the temporary files (or folders) of atomic writes into ``folder`` whose writing
    process is gone (killed mid-write), and those that older convspec versions left for the
    files named in ``legacy`` (their names hold no process id: only for the folder's one
    writer, e.g. a resumed run). Returns what was removed; what it cannot remove is left."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        old = None if match is not None else _LEGACY.match(entry.name)
        stale = (match is not None and not _alive(int(match["pid"]))) or (
            old is not None and old["name"] in legacy)
        if not stale:
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed
