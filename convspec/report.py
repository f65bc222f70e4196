"""A finished run, reopened: its model, data and test results, for plots and the HTML report.

``report.html`` is one self-contained file (figures embedded as base64 PNG, no scripts, no
external resources), so it can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .atomic_files import atomic_write_text
from .backends import compile_model, get_backend
from .data import Dataset
from .data.catalog import DATASETS
from .evaluation import Evaluation, evaluate
from .run_config import RunConfig
from .run_data import class_names, describe, run_data
from .run_directory import WEIGHTS_FILE, RunDirectory
from .shapes import infer_shapes
from .specification import Spec
from .summary import format_table, format_totals
from .viz.run_figures import KINDS, RunFigure, write_run_plots

REPORT_FILE = "report.html"


@dataclass
class Run:
    """A finished (or checkpointed) run, opened: its directory and spec; its weights, data,
    compiled model and test evaluation are loaded when first used (``convspec plot --what
    curves`` reads only the metrics, ``--what filters`` only the weights, no framework)."""

    directory: RunDirectory
    spec: Spec
    config: RunConfig
    backend: str | None = None  # the backend to run (default: the run's)
    data_path: str | None = None  # --data
    data_dir: str | None = None  # --data-dir
    log: Any = None
    reference_check: bool = True  # check the compiled model against the NumPy reference

    @classmethod
    def trained(cls, directory: RunDirectory, spec: Spec, *, model: Any, data: Dataset,
                evaluation: Evaluation) -> Run:
        """A run just trained in this process: its model, data and evaluation at hand."""
        assert directory.config is not None
        run = cls(directory, spec, directory.config)
        run.__dict__.update(model=model, data=data, evaluation=evaluation)
        return run

    @property
    def run_dir(self) -> Path:
        return self.directory.path

    @property
    def class_names(self) -> tuple[str, ...]:
        """One name per output (the run's recorded class names)."""
        return class_names(self.spec, self.directory)

    @property
    def has_weights(self) -> bool:
        return (self.run_dir / WEIGHTS_FILE).is_file() or self.directory.has_checkpoint()

    @cached_property
    def weights(self) -> dict[str, Any]:
        """The canonical weights (``weights.safetensors``, else the checkpoint's)."""
        return self.directory.load_weights(self.spec)

    @cached_property
    def data(self) -> Dataset:
        """The run's own data (``convspec.run_data``) unless ``data_path`` / ``data_dir``
        says otherwise; ``log`` receives a line saying which data it is."""
        loaded = run_data(self.spec, self.directory, data=self.data_path,
                          data_dir=self.data_dir, log=self.log)
        if self.log is not None:
            self.log(describe(loaded, "test"))
        return loaded

    @cached_property
    def model(self) -> Any:
        model = compile_model(get_backend(self.backend or self.config.backend), self.spec,
                              weights=self.weights)
        if self.reference_check:
            from .verification import check_model

            check_model(model)
        return model

    @cached_property
    def evaluation(self) -> Evaluation:
        return evaluate(self.model, self.data.test, self.spec.train.eval_batch_size)

    def plots(self, kinds: Iterable[str] = KINDS, *, images: Sequence[int] | None = None,
              layers: Sequence[str] | None = None,
              input_channels: Sequence[int] | None = None) -> list[RunFigure]:
        return write_run_plots(self, kinds, images=images, layers=layers,
                               input_channels=input_channels)

    @cached_property
    def final(self) -> dict[str, Any]:
        """``final.json``; empty for a run that has not finished."""
        return self.directory.read_final()


def open_run(run_dir: str | Path, *, backend: str | None = None, data_dir: str | None = None,
             data: str | None = None, log: Any = None, reference_check: bool = True) -> Run:
    """A run directory's spec and config; its weights, data (the run's own unless ``data``
    (a path) or ``data_dir`` says otherwise) and model (compiled with ``backend``, default the
    run's own, and with ``reference_check`` checked against the NumPy reference:
    ``convspec.verification.check_model``) load when a figure or the report needs them."""
    directory = RunDirectory.open(run_dir)
    config = directory.config
    assert config is not None
    return Run(directory, directory.load_spec(), config, backend, data, data_dir, log,
               reference_check)


def _img(path: Path, alt: str, mime: str = "image/png") -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:{mime};base64,{data}">' \
           f"<figcaption>{html.escape(alt)}</figcaption></figure>"


def _graph(run: Run) -> str:
    """The network's picture (graph.svg, drawn by Graphviz), or why it is missing and its DOT
    text."""
    from .viz.graph import GraphvizMissing, render_graph

    try:
        path = render_graph(run.spec, run.run_dir / "graph.svg")
    except GraphvizMissing as exc:
        dot = (run.run_dir / "graph.dot").read_text(encoding="utf-8")
        return (f'<p class="muted">{html.escape(str(exc))}</p><details><summary>The graph as '
                f"DOT text</summary><pre>{html.escape(dot)}</pre></details>")
    return _img(path, "network graph", "image/svg+xml")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:13px;border-radius:4px}
table.kv td{padding:.15em 1em .15em 0} .big{font-size:1.6em;font-weight:600}
figure{display:inline-block;margin:.5em;vertical-align:top;text-align:center}
figure img{max-width:100%;border:1px solid #eee} figcaption{font-size:.9em;color:#555}
.muted{color:#666}
"""


TUTORIAL_MNIST = ("The TensorFlow tutorial's network reports 98.8% (9876 / 10000) on this "
                  "test set after 10,000 iterations.")
FULL_TEST_SETS = {"mnist": 10_000, "fashion-mnist": 10_000}  # the built-in test splits


def test_set_text(data: Dataset) -> str:
    """What the run's test set is, in words (what its accuracy can be compared with)."""
    n = len(data.test)
    title = DATASETS[data.name].title if data.name in DATASETS else data.name
    if data.is_sample:
        return (f"{n:,} images held out of the 5,000-image {title} sample ({data.source}); "
                f"not comparable with results on the full {title} test set")
    if FULL_TEST_SETS.get(data.name) == n:
        return f"the full {title} test set ({n:,} images, {data.source})"
    return f"{n:,} test images from {data.source}"


def comparable_claim(data: Dataset) -> str | None:
    """The tutorial's published accuracy, only for a run measured on the same test set (the
    full MNIST test set)."""
    if data.name == "mnist" and not data.is_sample and len(data.test) == 10_000:
        return TUTORIAL_MNIST
    return None


def write_report(run: Run, *, images: Sequence[int] | None = None) -> Path:
    """Render every figure and the network's graph, and write ``report.html`` into the run
    directory. ``images``: the test images whose layer outputs are shown (default: the
    tutorial's 0 and 13)."""
    figures = run.plots(KINDS, images=images)
    ev, final, cfg = run.evaluation, run.final, run.config
    spec_text = run.directory.spec_text()
    shape_table = infer_shapes(run.spec)
    table = f"{format_table(shape_table)}\n{format_totals(shape_table)}"
    facts = {
        "Backend (trained / shown)": f"{cfg.backend} / {run.model.backend}",
        "Test set": test_set_text(run.data),
        "Preprocessing": run.data.preprocessing.formula(),
        "Iterations": final.get("iterations", "unknown (no final.json)"),
        "Training time": f"{final.get('elapsed_seconds', '?')} s",
        "Validation accuracy": f"{final['val_accuracy']:.2%}"
                               if final.get("val_accuracy") is not None else "n/a",
        "Architecture hash": run.spec.architecture_hash(),
    }
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in facts.items())
    per_class = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td>{acc:.1%}</td></tr>"
        for name, acc in zip(run.class_names, ev.per_class_accuracy))
    claim = comparable_claim(run.data)

    def section(title: str, *kinds: str) -> str:
        imgs = "".join(_img(f.path, f.caption) for f in figures if f.kind in kinds)
        return f"<h2>{title}</h2>{imgs}" if imgs else ""

    body = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>convspec report: {html.escape(run.spec.name)}</title><style>{_CSS}</style></head><body>
<h1>{html.escape(run.spec.name)}</h1>
<p class="muted">{html.escape(run.spec.description)} &middot; {html.escape(str(run.run_dir))}</p>
<p class="big">{html.escape(ev.summary())}</p>
<p>Measured on {html.escape(test_set_text(run.data))}.{
        f" {html.escape(claim)}" if claim else ""}</p>
<table class="kv">{rows}</table>
{section("Training curves", "curves")}
{section("Test images", "images")}
{section("Confusion matrix", "confusion")}
<h2>Per-class accuracy</h2><table class="kv">{per_class}</table>
{section("Example errors", "errors")}
{section("Convolution filters", "filters")}
{section("Layer outputs", "input", "activations")}
<h2>Network</h2><pre>{html.escape(table)}</pre>
{_graph(run)}
<h2>Spec as used</h2><pre>{html.escape(spec_text)}</pre>
<h2>Final metrics</h2><pre>{html.escape(json.dumps(
        {k: v for k, v in final.items() if k != "test"}, indent=2))}</pre>
</body></html>
"""
    path = run.run_dir / REPORT_FILE
    atomic_write_text(path, body)
    return path
