"""Framework-free plots for convspec, one module per figure family.

* ``images``      - ``plot_images``, ``plot_example_errors``, ``plot_image``;
* ``confusion``   - ``plot_confusion_matrix`` (the matrix: ``convspec.metrics``);
* ``filters``     - ``plot_conv_weights`` (white at zero, with a colorbar);
* ``activations`` - ``plot_layer_output``, ``plot_conv_layer`` (the input image beside),
  ``block_outputs`` (what the tutorial draws: each conv block's output);
* ``curves``      - ``plot_training_curves`` (needs only the metrics);
* ``run_figures`` - ``write_run_plots``: every tutorial figure of a run, written as PNG files;
* ``graph``       - ``graph_dot``, ``render_graph``: the network's graph, drawn by Graphviz;
* ``figure``      - the shared plumbing (headless figures, PNG output, grids).

Everything but the graph (Graphviz) needs only NumPy and matplotlib, so the same plots work
for every backend (models are reached through a duck-typed ``activations()`` method, weights
through convspec's canonical ``name -> ndarray`` dict).
"""

from __future__ import annotations

from .activations import block_outputs, plot_conv_layer, plot_layer_output
from .confusion import plot_confusion_matrix
from .curves import plot_training_curves
from .figure import DPI
from .filters import plot_conv_weights
from .graph import graph_dot, render_graph
from .images import plot_example_errors, plot_image, plot_images
from .run_figures import KINDS, RunFigure, write_run_plots

__all__ = [
    "DPI",
    "KINDS",
    "RunFigure",
    "block_outputs",
    "graph_dot",
    "plot_confusion_matrix",
    "plot_conv_layer",
    "plot_conv_weights",
    "plot_example_errors",
    "plot_image",
    "plot_layer_output",
    "plot_images",
    "plot_training_curves",
    "render_graph",
    "write_run_plots",
]
