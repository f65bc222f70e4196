"""A finished run, reopened: its model, data and test results, for plots and the HTML report.

``report.html`` is one self-contained file (figures embedded as base64 PNG, no scripts, no
external resources), so it can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .atomic_files import atomic_write_text
from .backends import compile_model, get_backend
from .data import Dataset
from .evaluation import Evaluation, evaluate
from .run_config import RunConfig
from .run_data import class_names, describe, run_data
from .run_directory import RunDirectory
from .shapes import infer_shapes
from .specification import Spec
from .summary import format_table, format_totals
from .viz.run_figures import KINDS, write_run_plots

REPORT_FILE = "report.html"


@dataclass
class Run:
    """A finished (or checkpointed) run, opened: its directory, spec, config, model, data."""

    directory: RunDirectory
    spec: Spec
    config: RunConfig
    model: Any
    data: Dataset

    @property
    def run_dir(self) -> Path:
        return self.directory.path

    @property
    def class_names(self) -> tuple[str, ...]:
        """One name per output (the run's recorded class names)."""
        return class_names(self.spec, self.directory)

    @cached_property
    def evaluation(self) -> Evaluation:
        return evaluate(self.model, self.data.test, self.spec.train.eval_batch_size)

    def plots(self, kinds: Iterable[str] = KINDS, *, image: int = 0,
              layers: list[str] | None = None) -> list[Path]:
        return write_run_plots(self.run_dir, data=self.data, model=self.model,
                               evaluation=self.evaluation, what=kinds, image=image,
                               layers=layers, class_names=self.class_names)

    @cached_property
    def final(self) -> dict[str, Any]:
        """``final.json``; empty for a run that has not finished."""
        return self.directory.read_final()


def open_run(run_dir: str | Path, *, backend: str | None = None, data_dir: str | None = None,
             data: str | None = None, log: Any = None, reference_check: bool = True) -> Run:
    """Load a run directory's spec, weights and data, compiled with ``backend`` (default: the
    run's own) and, with ``reference_check``, checked against the NumPy reference
    (``convspec.verification.check_model``). The data is the run's own (``convspec.run_data``)
    unless ``data`` (a path) or ``data_dir`` says otherwise; ``log`` receives a line saying
    which data it is."""
    directory = RunDirectory.open(run_dir)
    config = directory.config
    assert config is not None
    spec = directory.load_spec()
    weights = directory.load_weights(spec)
    loaded = run_data(spec, directory, data=data, data_dir=data_dir, log=log)
    if log is not None:
        log(describe(loaded, "test"))
    model = compile_model(get_backend(backend or config.backend), spec, weights=weights)
    if reference_check:
        from .verification import check_model

        check_model(model)
    return Run(directory, spec, config, model, loaded)


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


def write_report(run: Run, *, image: int = 0) -> Path:
    """Render plots and the network's graph and write ``report.html`` into the run
    directory."""
    figures = run.plots(KINDS, image=image)
    by_name = {p.name: p for p in figures}
    ev, final, cfg = run.evaluation, run.final, run.config
    spec_text = run.directory.spec_text()
    shape_table = infer_shapes(run.spec)
    table = f"{format_table(shape_table)}\n{format_totals(shape_table)}"
    facts = {
        "Backend (trained / shown)": f"{cfg.backend} / {run.model.backend}",
        "Dataset": f"{run.data.name} ({run.data.source})"
                   + (" - 5,000-image sample" if run.data.is_sample else ""),
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

    def section(title: str, names: list[str]) -> str:
        imgs = "".join(_img(by_name[n], n.removesuffix(".png").replace("_", " "))
                       for n in names if n in by_name)
        return f"<h2>{title}</h2>{imgs}" if imgs else ""

    names = [p.name for p in figures]
    body = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>convspec report: {html.escape(run.spec.name)}</title><style>{_CSS}</style></head><body>
<h1>{html.escape(run.spec.name)}</h1>
<p class="muted">{html.escape(run.spec.description)} &middot; {html.escape(str(run.run_dir))}</p>
<p class="big">{html.escape(ev.summary())}</p>
<table class="kv">{rows}</table>
{section("Training curves", ["curves.png"])}
{section("Confusion matrix", ["confusion.png"])}
<h2>Per-class accuracy</h2><table class="kv">{per_class}</table>
{section("Example errors", ["errors.png"])}
{section("Convolution filters", [n for n in names if n.startswith("filters_")])}
{section(f"Convolution outputs for test image {image}",
         [n for n in names if n.startswith("activations_")])}
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
