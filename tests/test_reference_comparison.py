"""``convspec check``: every node against the NumPy reference, in every backend that can build
the spec and in the ONNX export; the tolerance grows with a layer's numbers like an export's."""

from __future__ import annotations

import pytest
from conftest import BACKENDS, ROOT, register_entry_point

from convspec.backends import is_available
from convspec.cli import main
from convspec.errors import BackendError
from convspec.reference_comparison import ReferenceComparison, compare_with_reference
from convspec.specification import load_spec

GRAPH = ROOT / "tests" / "specs" / "valid" / "residual_block.yaml"


def test_every_node_of_a_graph_in_every_backend_and_the_onnx_export():
    pytest.importorskip("onnxruntime")
    spec = load_spec(GRAPH)
    report = compare_with_reference(spec, batch=3)
    installed = {name for name in BACKENDS if is_available(name)}
    assert set(report.backends) == installed | {"onnx"} and not report.skipped
    assert report.ok, report.format()
    assert report.layers == [row.name for row in spec.table.rows]


def test_a_backend_that_cannot_build_the_spec_is_skipped_or_refused(monkeypatch):
    # tests/numpy_backend.py declares no layer kinds or features: it builds plain stacks only
    register_entry_point(monkeypatch, "numpy", "numpy_backend:NumpyBackend")
    spec = load_spec(GRAPH)
    report = compare_with_reference(spec, batch=2)
    assert "numpy" not in report.backends
    assert report.skipped["numpy"].startswith("the numpy backend cannot build it yet: ")
    with pytest.raises(BackendError, match="the numpy backend cannot build spec"):
        compare_with_reference(spec, ["numpy"])


def test_the_tolerance_grows_with_a_layers_numbers():
    report = ReferenceComparison(["onnx"], ["small", "large"], {"small": "2", "large": "2"},
                                 {"onnx": {"small": 9e-6, "large": 4e-4}}, [], 1e-5, {},
                                 {"small": 0.5, "large": 50.0})
    assert report.limit("small") == 1e-5 and report.limit("large") == pytest.approx(5e-4)
    assert report.ok
    report.diffs["onnx"]["small"] = 2e-5
    assert not report.ok
    assert report.format().splitlines()[-1] == (
        "MISMATCH: max abs difference tolerance 1e-05 per unit of a layer's max |ref| "
        "(at least 1)")


def test_check_command_on_a_graph(capsys):
    pytest.importorskip("onnxruntime")
    assert main(["check", str(GRAPH), "--backend", "onnx", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "res1_add" in out and "onnx vs ref" in out and out.rstrip().endswith(
        "(at least 1)")
    assert out.splitlines()[-1].startswith("OK:")
