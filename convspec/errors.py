"""One error family for convspec, rendered in one place.

Every failure a person can cause (a bad spec, a corrupt data file, a checkpoint made for
another network, a bad CLI argument) is raised as a ``ConvspecError`` subclass so the CLI can
print one clear paragraph and exit non-zero instead of showing a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ConvspecError(Exception):
    """Base class: the message is a complete, user-facing paragraph."""

    exit_code = 1


class DataError(ConvspecError):
    """A dataset could not be found, downloaded, or read."""


class WeightsError(ConvspecError):
    """A weights or checkpoint file is unreadable or belongs to another network."""


class RunDirectoryError(ConvspecError):
    """A run directory, or one of its files (config.json, metrics, final.json), is missing or
    unreadable."""


class BackendError(ConvspecError):
    """A backend is unknown, or its framework is not installed."""


class FileSystemError(ConvspecError):
    """A file or folder could not be read or written: a full disk, a read-only file system,
    a permission, a missing parent folder (``from_os_error``)."""

    @classmethod
    def from_os_error(cls, exc: OSError, doing: str = "") -> FileSystemError:
        """One line naming the path, what failed and why: ``cannot write runs/x/metrics.jsonl:
        No space left on device (ENOSPC); free some space ...``."""
        return cls(os_error_message(exc, doing))


# errno name -> what a person can do about it
_OS_HINTS = {
    "ENOSPC": "free some space, or write somewhere else",
    "EDQUOT": "the disk quota is used up; free some space, or write somewhere else",
    "EROFS": "the file system is read-only; write somewhere else (e.g. --out)",
    "EACCES": "permission denied; write somewhere you may write (e.g. --out)",
    "EPERM": "not permitted; write somewhere you may write (e.g. --out)",
    "ENOENT": "a folder on the way does not exist",
}


def os_error_message(exc: OSError, doing: str = "") -> str:
    """``exc`` as one line: ``doing`` (e.g. "cannot write"), the path(s), the system's reason
    and errno name, and a hint."""
    import errno as errno_module

    name = errno_module.errorcode.get(exc.errno or 0, "") if exc.errno else ""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths) or "(no path)"
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = _OS_HINTS.get(name)
    lead = f"{doing} {where}" if doing else where
    return (f"{lead}: {reason}" + (f" ({name})" if name else "")
            + (f"; {hint}" if hint else ""))


class UsageError(ConvspecError):
    """A command-line argument is wrong."""

    exit_code = 2


@dataclass(frozen=True)
class ErrorItem:
    """One located problem in a spec."""

    message: str
    path: str = ""  # e.g. "layers[3].conv2d.filters"
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def render(self, source: str | None) -> str:
        where = source or "<spec>"
        if self.line is not None:
            where = f"{where}:{self.line}:{self.column or 1}"
        what = f"{self.path}: {self.message}" if self.path else self.message
        return f"{where}: {what}"


@dataclass
class SpecError(ConvspecError):
    """All problems found in one spec, each with its location."""

    items: list[ErrorItem] = field(default_factory=list)
    source: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(item.render(self.source) for item in self.items)

    def __str__(self) -> str:
        return self.render()
