"""Does a compiled model compute its spec's function? Checked against the NumPy reference.

A framework kernel can be wrong for some shapes (oneDNN's CPU convolution with one input
channel, output width 1 and a width stride of 2 or more read outside its input in both PyTorch
and TensorFlow; ``convspec/backends/*/ops.py`` route around that one). So before a model is
trained, evaluated or exported, ``verify_model`` runs a few pseudo-random images through it
and through ``convspec.backends.reference`` with the model's own weights, and compares

* every layer's output: max |backend - reference| <= ``tolerance`` x max(1, largest
  |reference| of that layer) (``convspec check``'s absolute 1e-5 while activations stay
  within 1, as they do with initial weights; relative beyond, like the export check), and
* the gradient of the loss (evaluation mode), weight by weight, as a directional derivative
  along the gradient's own direction ``d = g / |g|``: ``|g|`` against the central difference
  of the float64 reference loss along ``d`` (relative ``GRADIENT_TOLERANCE``).

A difference raises ``ModelMismatch`` naming the first layer (or weight) that differs and by how
much. NaN anywhere is a difference. ``check_model`` costs one forward and one backward pass
of the model and 1 + 2 x (trainable weights) reference forward passes on ``images`` images
(about a tenth of a second for the tutorial network; see README).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends.reference import ReferenceModel, softmax_cross_entropy
from .errors import ConvspecError
from .specification import Spec
from .weights import trainable_names

TOLERANCE = 1e-5  # convspec check's, per unit of a layer's largest |activation| beyond 1
GRADIENT_TOLERANCE = 1e-3  # of |g|: float32 gradients against float64 central differences
# Mixed precision computes in 16 bits: a wrong kernel is still off by far more than this.
PRECISION_TOLERANCE = {"fp32": TOLERANCE, "fp16": 2e-2, "bf16": 1e-1}


class ModelMismatch(ConvspecError):
    """A compiled model computes another function than its spec (a framework kernel bug)."""


@dataclass(frozen=True)
class Difference:
    """How far one layer's output (or one weight's gradient) is from the reference."""

    what: str  # "layer conv1 (conv2d)" or "gradient of conv1/kernel"
    difference: float  # max abs difference, or |directional derivative difference|
    allowed: float

    @property
    def ok(self) -> bool:
        return bool(self.difference <= self.allowed)  # False for NaN


@dataclass(frozen=True)
class Verification:
    """The differences found, in network order, and the seconds the check took."""

    differences: list[Difference]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.differences)

    @property
    def first_failure(self) -> Difference | None:
        return next((d for d in self.differences if not d.ok), None)


def verification_batch(spec: Spec, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform [0, 1) float32 NHWC images and int64 labels from ``seed``."""
    rng = np.random.default_rng([seed, 0xC0DE])
    shape = (n, spec.input.height, spec.input.width, spec.input.channels)
    return rng.random(shape, dtype=np.float32), rng.integers(0, spec.classes, n)


def reference_outputs(spec: Spec, weights: Mapping[str, np.ndarray],
                      images: np.ndarray) -> list[np.ndarray]:
    """Every layer's float64 output of the NumPy reference (evaluation mode)."""
    ref = ReferenceModel(spec, {k: np.asarray(v, np.float64) for k, v in weights.items()})
    x, outs = np.asarray(images, np.float64), []
    for layer, row in zip(spec.layers, spec.table.rows, strict=True):
        x = ref._layer(layer, row, x)
        outs.append(x)
    return outs


def forward_differences(spec: Spec, got: Mapping[str, np.ndarray],
                        expected: list[np.ndarray], tolerance: float) -> list[Difference]:
    """Per layer: the model's outputs ``got`` (by layer name) against the reference's."""
    out = []
    for row, want in zip(spec.table.rows, expected, strict=True):
        a = got.get(row.name)
        what = f"layer {row.name} ({row.kind})"
        if a is None or a.shape != want.shape:
            out.append(Difference(f"{what}: shape {None if a is None else a.shape}, "
                                  f"expected {want.shape}", float("inf"), 0.0))
            continue
        scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
        diff = float(np.max(np.abs(a - want))) if a.size else 0.0
        out.append(Difference(what, diff if not np.isnan(a).any() else float("nan"),
                              tolerance * scale))
    return out


def gradient_differences(model: Any, weights: Mapping[str, np.ndarray], images: np.ndarray,
                         labels: np.ndarray, seed: int = 0) -> list[Difference]:
    """Per trainable weight: the model's evaluation-mode gradient ``g`` along ``d = g / |g|``
    (a random direction where ``g`` is 0) against the central difference of the float64
    reference loss along ``d``. Along its own direction a gradient scaled, rotated or
    replaced by garbage misses by a fraction of ``|g|``, however many values it has."""
    _, grads = model.gradients(images, labels, training=False)
    w64 = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    rng = np.random.default_rng([seed, 0xD1F])
    out = []
    for name in trainable_names(model.spec):
        g = np.asarray(grads[name], np.float64)
        norm = float(np.sqrt(np.sum(g * g))) if np.isfinite(g).all() else float("nan")
        d = g / norm if norm > 0 else rng.standard_normal(g.shape)
        d /= max(float(np.sqrt(np.sum(d * d))), 1e-300)
        h = 1e-6 * max(1.0, float(np.max(np.abs(w64[name]))) if g.size else 1.0)
        losses = []
        for sign in (1.0, -1.0):
            moved = dict(w64)
            moved[name] = w64[name] + sign * h * d
            logits = reference_outputs(model.spec, moved, images)[-1]
            losses.append(softmax_cross_entropy(logits, labels))
        numeric = (losses[0] - losses[1]) / (2 * h)
        analytic = float(np.sum(g * d))
        diff = abs(analytic - numeric) if np.isfinite(analytic) else float("nan")
        out.append(Difference(f"gradient of {name}", diff,
                              GRADIENT_TOLERANCE * abs(analytic) + 1e-7))
    return out


def verify_model(model: Any, *, images: int = 4, seed: int = 0, gradients: bool = True,
                 tolerance: float | None = None) -> Verification:
    """Compare ``model`` (a ``CompiledModel``) with the NumPy reference on ``images``
    pseudo-random images, with the model's current weights: every layer's output and, with
    ``gradients`` (float32 models only), the gradient of every trainable weight. ``tolerance``
    defaults to ``PRECISION_TOLERANCE`` of the model's precision. Changes nothing in the
    model. Returns the ``Verification``; ``check_model`` raises on a difference."""
    began = time.perf_counter()
    spec: Spec = model.spec
    precision = getattr(model, "precision", "fp32")
    tol = PRECISION_TOLERANCE.get(precision, TOLERANCE) if tolerance is None else tolerance
    weights = model.get_weights()
    x, y = verification_batch(spec, images, seed)
    expected = reference_outputs(spec, weights, x)
    found = forward_differences(spec, model.activations(x), expected, tol)
    can_differentiate = callable(getattr(model, "gradients", None))  # a minimal plugin may not
    if gradients and can_differentiate and precision == "fp32" and all(d.ok for d in found):
        found += gradient_differences(model, weights, x, y, seed)
    return Verification(found, time.perf_counter() - began)


def check_model(model: Any, *, images: int = 4, gradients: bool = True,
                flag: str = "--no-reference-check") -> Verification:
    """``verify_model``, raising ``ModelMismatch`` (naming the backend, the first layer or
    weight that differs, the difference and the tolerance, and ``flag``, the opt-out) when
    the model computes another function than its spec."""
    result = verify_model(model, images=images, gradients=gradients)
    bad = result.first_failure
    if bad is not None:
        raise ModelMismatch(
            f"the {model.backend} model of spec {model.spec.name!r} computes a different "
            f"function from the spec: {bad.what} differs from the NumPy reference by "
            f"{bad.difference:.3g} (tolerance {bad.allowed:.3g}) on {images} test images. "
            f"This is a kernel bug of the framework for this layer's shapes; try the other "
            f"backend, or change the layer (stride, padding, channels). {flag} skips this "
            f"check at your own risk.")
    return result
