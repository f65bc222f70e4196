"""Figure plumbing shared by every plot: headless figures, PNG output, tick-less grids.

Figures are built with ``matplotlib.figure.Figure`` and an Agg canvas rather than pyplot, so
plotting is headless-safe, never pops a window, and leaves no global pyplot state behind;
pyplot is imported only when ``show=True`` asks for a window.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
PathArg = str | os.PathLike[str] | None


def new_figure(figsize: tuple[float, float], show: bool) -> Figure:
    """A constrained-layout figure; pyplot-managed only when it must be shown."""
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, dpi=DPI, layout="constrained")
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def finish(fig: Figure, path: PathArg, show: bool) -> Figure:
    """Save to ``path`` as PNG (making parent dirs; atomically, ``FileSystemError`` naming
    the file when it cannot be written) and/or display, then return the figure."""
    if path is not None:
        from ..atomic_files import atomic_write

        atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig


def grid_shape(n: int, ncols: int | None = None) -> tuple[int, int]:
    """(rows, cols) for ``n`` cells, ceil(sqrt(n)) columns unless given."""
    ncols = ncols or math.ceil(math.sqrt(n))
    return math.ceil(n / ncols), ncols


def grid(fig: Figure, n: int, ncols: int | None = None, *, square: bool = False) -> list[Axes]:
    """``n`` tick-less axes in a grid (k x k if ``square``, as the tutorial draws filters);
    the spare cells are hidden."""
    shape = (math.ceil(math.sqrt(n)),) * 2 if square else grid_shape(n, ncols)
    axes = list(fig.subplots(*shape, squeeze=False).ravel())
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]
