"""Option types of the command line: finite floats, bounded integers and backend names.

Bad values are bad arguments (exit status 2, the option named), caught before any work starts:
``--lr nan``, ``--lr inf`` and ``--lr 1e400`` (which reads as infinity) are not finite, an
integer beyond the spec's own bounds (``convspec.limits``) is out of range, and an empty or
blank ``--backend`` would otherwise fall back to the default backend silently.
"""

from __future__ import annotations

import math
import re
from typing import Any

import click

from ..limits import MAX_SEED, MAX_SIZE, MAX_THREADS


class FiniteFloat(click.FloatRange):
    """A finite float, optionally within a range (``click.FloatRange``'s arguments)."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            if math.isinf(number) and "inf" not in str(value).lower():
                self.fail(f"{value} is too large for a float; give a finite number", param, ctx)
            self.fail(f"{value} is not a finite number", param, ctx)
        if number == 0 and re.search(r"[1-9]", re.split("[eE]", str(value))[0]):
            self.fail(f"{value} is too small for a float (it reads as 0.0)", param, ctx)
        return super().convert(number, param, ctx)


class BoundedInt(click.IntRange):
    """An integer from ``min`` to ``max`` (by default ``MAX_SIZE``, the bound of every size)."""

    name = "integer"

    def __init__(self, min: int = 1, max: int = MAX_SIZE) -> None:
        super().__init__(min=min, max=max)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        digits = value.strip().lstrip("+-") if isinstance(value, str) else ""
        if len(digits) > 30 and digits.isdigit():  # no digit-limit error, no 5,000-digit echo
            self.fail(f"a {len(digits):,}-digit number is not in the range "
                      f"{self._describe_range()}", param, ctx)
        return super().convert(value, param, ctx)

    def _describe_range(self) -> str:
        return f"{self.min:,}<=x<={self.max:,}"


SIZE = BoundedInt(1)
"""A positive size or count: iterations, batch sizes, intervals, process counts."""
COUNT = BoundedInt(0)
"""A non-negative count or index."""
SEED = BoundedInt(0, MAX_SEED)
"""A random seed."""
THREADS = BoundedInt(1, MAX_THREADS)
"""A number of CPU threads per process."""


class BackendName(click.ParamType):
    """A backend name; an empty or blank one is refused with the registered backends."""

    name = "backend"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            from ..backends import ALIASES, list_backends

            self.fail(f"an empty backend name; registered backends: "
                      f"{', '.join(list_backends())} (aliases: {', '.join(sorted(ALIASES))})",
                      param, ctx)
        return value


BACKEND = BackendName()
