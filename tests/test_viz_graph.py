"""The network's picture: DOT text for any spec, drawn by Graphviz where it is installed, a
one-line message and the DOT text where it is not; ``convspec plot --what graph SPEC``."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest
from conftest import ROOT, SPECS

from convspec.cli import main
from convspec.errors import ConvspecError
from convspec.specification import load_spec
from convspec.viz.graph import INSTALL, GraphvizMissing, graph_dot, render_graph

RESIDUAL = ROOT / "tests" / "specs" / "valid" / "residual_block.yaml"
needs_graphviz = pytest.mark.skipif(
    importlib.util.find_spec("graphviz") is None or shutil.which("dot") is None,
    reason="Graphviz (its dot program and Python package) is not installed")


def test_dot_text_has_every_layer_every_edge_and_each_instance_framed():
    spec = load_spec(RESIDUAL)
    dot = graph_dot(spec)
    assert dot.startswith('digraph "residual_block" {') and dot.rstrip().endswith("}")
    for row in spec.table.rows:
        assert f'  "{row.name}" [label="{row.name}\\n' in dot
        for source in row.inputs:
            assert f'  "{source}" -> "{row.name}";' in dot
    edges = sum(len(row.inputs) for row in spec.table.rows)
    assert dot.count(" -> ") == edges
    assert 'subgraph "cluster_res1" { label="res1 (residual)"' in dot
    assert 'subgraph "cluster_residual1" { label="residual1 (residual)"' in dot
    assert dot.count("subgraph") == 3
    assert "conv2d 3x3 /2" in dot and "2,628 trainable + 80 non-trainable" in dot


def test_a_stack_is_a_chain():
    dot = graph_dot(load_spec(SPECS / "mnist.yaml"))
    assert "subgraph" not in dot
    assert '"input" -> "conv1";' in dot and '"fc1" -> "fc2";' in dot and dot.count(" -> ") == 9


@needs_graphviz
@pytest.mark.parametrize("suffix, start", [(".svg", b"<?xml"), (".png", b"\x89PNG"),
                                           (".pdf", b"%PDF")])
def test_graphviz_draws_it(tmp_path, suffix, start):
    path = render_graph(load_spec(RESIDUAL), tmp_path / f"g{suffix}")
    data = path.read_bytes()
    assert data.startswith(start) and len(data) > 1000
    if suffix == ".svg":
        assert b"res2_shortcut" in data and b"<svg" in data


def test_without_graphviz_the_dot_text_and_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # the import fails
    with pytest.raises(GraphvizMissing) as info:
        render_graph(load_spec(RESIDUAL), tmp_path / "g.svg")
    message = str(info.value)
    assert "\n" not in message and INSTALL in message
    assert message.startswith("cannot draw g.svg: the graphviz Python package is not installed")
    assert (tmp_path / "g.dot").read_text() == graph_dot(load_spec(RESIDUAL))
    assert not (tmp_path / "g.svg").exists()


@needs_graphviz
def test_without_the_dot_program(tmp_path, monkeypatch):
    import graphviz

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(graphviz.Source, "pipe", missing)
    with pytest.raises(GraphvizMissing, match="Graphviz's dot program is not installed"):
        render_graph(load_spec(RESIDUAL), tmp_path / "g.png")
    assert (tmp_path / "g.dot").is_file()


def test_dot_output_and_bad_suffixes(tmp_path):
    spec = load_spec(RESIDUAL)
    assert render_graph(spec, tmp_path / "g.dot").read_text() == graph_dot(spec)
    with pytest.raises(ConvspecError, match=r"a graph picture is \.svg, \.png, \.pdf or \.dot"):
        render_graph(spec, tmp_path / "g.jpeg")


def test_plot_command_draws_a_spec(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "picture.dot"
    assert main(["plot", str(RESIDUAL), "--what", "graph", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n" and out.is_file()
    assert main(["plot", str(RESIDUAL), "--what", "errors"]) == 2
    assert "needs a run directory; a spec file has only its graph" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "graphviz", None)
    assert main(["plot", str(RESIDUAL)]) == 1  # --what all is the graph; it cannot be drawn
    err = capsys.readouterr().err
    assert err.startswith("error: cannot draw residual_block-graph.svg: the graphviz Python")
    assert (tmp_path / "residual_block-graph.dot").is_file()
