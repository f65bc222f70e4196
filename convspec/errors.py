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
