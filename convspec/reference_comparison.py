"""Compiled backends compared with the NumPy reference: the same weights and random batch
through every backend and the oracle, layer by layer.

``convspec check`` prints the result (``ReferenceComparison.format``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import available_backends, get_backend
from .backends.reference import ReferenceModel
from .shapes import format_shape, infer_shapes
from .specification import Spec
from .weights import init_weights


@dataclass
class ReferenceComparison:
    backends: list[str]
    layers: list[str]
    shapes: dict[str, str]  # layer -> expected shape
    diffs: dict[str, dict[str, float]]  # backend -> layer -> max abs diff vs reference
    shape_errors: list[str]
    tolerance: float

    @property
    def ok(self) -> bool:
        return not self.shape_errors and all(
            d <= self.tolerance for per in self.diffs.values() for d in per.values())

    def format(self) -> str:
        head = ["layer", "shape", *(f"{b} vs ref" for b in self.backends)]
        rows = [[name, self.shapes[name],
                 *(f"{self.diffs[b][name]:.2e}" for b in self.backends)] for name in self.layers]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

        def fmt(row: list[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()

        lines = [fmt(head), "  ".join("-" * w for w in widths), *map(fmt, rows)]
        lines += self.shape_errors
        verdict = "OK" if self.ok else "MISMATCH"
        lines.append(f"{verdict}: max abs difference tolerance {self.tolerance:g}")
        return "\n".join(lines)


def random_batch(spec: Spec, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, spec.input.height, spec.input.width, spec.input.channels)
    return rng.random(shape, dtype=np.float32)


def compare_with_reference(spec: Spec, backends: list[str] | None = None, *, batch: int = 8,
                           seed: int = 0, tolerance: float = 1e-5) -> ReferenceComparison:
    """Compare every layer's activations of each backend (default: every installed one)
    against the NumPy reference on ``batch`` uniform [0, 1) float32 images from ``seed``;
    ``tolerance`` is the largest max abs difference accepted per layer."""
    names = backends if backends is not None else available_backends()
    table = infer_shapes(spec)
    weights = init_weights(spec, seed)
    x = random_batch(spec, batch, seed)
    expected = ReferenceModel(spec, weights).activations(x)
    diffs: dict[str, dict[str, float]] = {}
    shape_errors = []
    for name in names:
        model = get_backend(name).compile(spec, weights=weights)
        got = model.activations(x)
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
                        shape_errors, tolerance)
