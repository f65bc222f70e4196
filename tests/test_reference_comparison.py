"""``convspec check``: every node against the NumPy reference, in every backend that can build
the spec and in the ONNX export; the tolerance grows with a layer's numbers like an export's."""

from __future__ import annotations

import pytest
from conftest import PENDING_BACKENDS, ROOT, require_backend

from convspec.cli import main
from convspec.errors import BackendError
from convspec.reference_comparison import ReferenceComparison, compare_with_reference
from convspec.specification import load_spec

GRAPH = ROOT / "tests" / "specs" / "valid" / "residual_block.yaml"


def test_every_node_of_a_graph_against_the_onnx_export():
    pytest.importorskip("onnxruntime")
    spec = load_spec(GRAPH)
    report = compare_with_reference(spec, batch=3)
    assert "onnx" in report.backends and report.ok, report.format()
    assert report.layers == [row.name for row in spec.table.rows]
    for name in PENDING_BACKENDS:
        if name not in report.backends:
            assert f"the {name} backend cannot build it yet" in report.skipped.get(name, name)


@pytest.mark.parametrize("name", PENDING_BACKENDS)
def test_a_backend_asked_for_by_name_must_build_the_spec(name):
    require_backend(name)
    with pytest.raises(BackendError, match=f"the {name} backend cannot build spec"):
        compare_with_reference(load_spec(GRAPH), [name])


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
