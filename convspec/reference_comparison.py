"""Compiled backends (and the ONNX export) compared with the NumPy reference: the same weights
and random batch through each and through the oracle, layer by layer (every node of a graph).

``convspec check`` prints the result (``ReferenceComparison.format``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends import available_backends, compile_model, get_backend, unsupported
from .backends.reference import ReferenceModel
from .errors import BackendError
from .shapes import format_shape, infer_shapes
from .specification import Spec
from .weights import init_weights

ONNX = "onnx"  # the ONNX export, run by ONNX Runtime, compared like a backend


@dataclass
class ReferenceComparison:
    backends: list[str]
    layers: list[str]
    shapes: dict[str, str]  # layer -> expected shape
    diffs: dict[str, dict[str, float]]  # backend -> layer -> max abs diff vs reference
    shape_errors: list[str]
    tolerance: float
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> why it was not run
    scales: dict[str, float] = field(default_factory=dict)  # layer -> max |reference value|

    def limit(self, layer: str) -> float:
        """The largest difference accepted in ``layer``: ``tolerance`` per unit of its largest
        reference value, at least 1 (float32 rounding grows with the numbers; the same rule
        as an export's check)."""
        return self.tolerance * max(1.0, self.scales.get(layer, 1.0))

    @property
    def ok(self) -> bool:
        return not self.shape_errors and all(
            d <= self.limit(layer) for per in self.diffs.values() for layer, d in per.items())

    def format(self) -> str:
        head = ["layer", "shape", "max |ref|", *(f"{b} vs ref" for b in self.backends)]
        rows = [[name, self.shapes[name], f"{self.scales.get(name, 0.0):.3g}",
                 *(f"{self.diffs[b][name]:.2e}" for b in self.backends)] for name in self.layers]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

        def fmt(row: list[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()

        lines = [fmt(head), "  ".join("-" * w for w in widths), *map(fmt, rows)]
        lines += self.shape_errors
        lines += [f"skipped {name}: {why}" for name, why in self.skipped.items()]
        verdict = "OK" if self.ok else "MISMATCH"
        lines.append(f"{verdict}: max abs difference tolerance {self.tolerance:g} per unit of a "
                     f"layer's max |ref| (at least 1)")
        return "\n".join(lines)


def random_batch(spec: Spec, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, spec.input.height, spec.input.width, spec.input.channels)
    return rng.random(shape, dtype=np.float32)


def onnx_available() -> bool:
    """True when the ONNX export can be built and run (onnx and onnxruntime installed)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def _activations(name: str, spec: Spec, weights: dict[str, Any],
                 x: np.ndarray) -> dict[str, np.ndarray]:
    if name == ONNX:
        if not onnx_available():
            raise BackendError('checking the ONNX export needs onnx and onnxruntime: '
                               'pip install "convspec[export]"')
        from .export.onnx_format import run_layers

        return run_layers(spec, weights, x)
    return compile_model(get_backend(name), spec, weights=weights).activations(x)


def compare_with_reference(spec: Spec, backends: list[str] | None = None, *, batch: int = 8,
                           seed: int = 0, tolerance: float = 1e-5) -> ReferenceComparison:
    """Compare every layer's activations of each backend (``"onnx"``: the ONNX export)
    against the NumPy reference on ``batch`` uniform [0, 1) float32 images from ``seed``;
    ``tolerance`` is the largest max abs difference accepted per layer, per unit of the
    layer's largest reference value when that exceeds 1 (``ReferenceComparison.limit``).

    By default every installed backend that can build the spec (the others are listed as
    skipped, with the reason) and the ONNX export, when onnx is installed; a backend named
    in ``backends`` that cannot build the spec is a BackendError, and so is a spec that
    nothing can run."""
    skipped: dict[str, str] = {}
    if backends is None:
        names = []
        for name in available_backends():
            problem = unsupported(get_backend(name), spec)
            if problem:
                skipped[name] = f"the {name} backend cannot build it yet: {problem}"
            else:
                names.append(name)
        names += [ONNX] if onnx_available() else []
        if not names:
            raise BackendError(f"nothing to compare spec {spec.name!r} with: "
                               + "; ".join(skipped.values() or ["no backend is installed"]))
    else:
        names = list(backends)
    table = infer_shapes(spec)
    weights = init_weights(spec, seed)
    x = random_batch(spec, batch, seed)
    expected = ReferenceModel(spec, weights).activations(x)
    diffs: dict[str, dict[str, float]] = {}
    shape_errors = []
    for name in names:
        got = _activations(name, spec, weights, x)
        diffs[name] = {}
        for row in table.rows:
            a = got.get(row.name)
            want = (batch, *row.output)
            if a is None or a.shape != want:
                shape_errors.append(f"{name}: layer {row.name} produced "
                                    f"{None if a is None else a.shape}, shape table says {want}")
                diffs[name][row.name] = float("inf")
                continue
            diffs[name][row.name] = float(np.max(np.abs(a - expected[row.name])))
    return ReferenceComparison(names, [r.name for r in table.rows],
                               {r.name: format_shape(r.output) for r in table.rows}, diffs,
                               shape_errors, tolerance, skipped,
                               {name: float(np.max(np.abs(a))) if a.size else 0.0
                                for name, a in expected.items()})
