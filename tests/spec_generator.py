"""Small valid specs drawn at random, for the gate "validates means it trains".

``random_spec(rng)`` draws a network of every layer kind (conv2d, maxpool, avgpool, the
activations, batchnorm, dropout, flatten, dense) with sizes, strides, paddings and dilations
from small ranges that include the edge cases (1-pixel extents, one channel, strides larger
than the input, windows as large as the input), keeps drawing until the spec validates, and
returns it; ``check_spec`` compiles it with a backend and compares the model with the NumPy
reference (``convspec.verification``: every layer's output and every weight's gradient).
Used by ``tests/test_spec_generator.py`` (a bounded number of specs in CI) and
``benchmarks/spec_gate.py`` (many more).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from convspec.errors import ConvspecError
from convspec.specification import Spec, validate_spec
from convspec.verification import Difference, verify_model

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "softmax")
SPATIAL = ("conv2d", "conv2d", "conv2d", "maxpool", "avgpool", "activation", "batchnorm",
           "dropout")
FLAT = ("dense", "activation", "batchnorm", "dropout")


def _pair(rng: random.Random, low: int, high: int) -> int | list[int]:
    if rng.random() < 0.5:
        return rng.randint(low, high)
    return [rng.randint(low, high), rng.randint(low, high)]


def _padding(rng: random.Random, window: int | list[int]) -> Any:
    choice = rng.random()
    if choice < 0.4:
        return "same"
    if choice < 0.7:
        return "valid"
    limit = (min(window) if isinstance(window, list) else window) - 1
    return rng.randint(0, max(limit, 0)) if rng.random() < 0.5 else [
        rng.randint(0, max(limit, 0)), rng.randint(0, max(limit, 0))]


def _activation(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(ACTIVATIONS)
    layer: dict[str, Any] = {"kind": kind}
    if kind == "leaky_relu" and rng.random() < 0.5:
        layer["alpha"] = round(rng.uniform(0.01, 0.5), 3)
    return layer


def _layer(rng: random.Random, kind: str) -> dict[str, Any]:
    if kind == "conv2d":
        layer: dict[str, Any] = {"kind": "conv2d", "filters": rng.randint(1, 4),
                                 "kernel": _pair(rng, 1, 5)}
        if rng.random() < 0.6:
            layer["stride"] = _pair(rng, 1, 3)
        if rng.random() < 0.3:
            layer["dilation"] = _pair(rng, 1, 3)
        layer["padding"] = _padding(rng, 1 if "dilation" in layer else layer["kernel"])
        if rng.random() < 0.2:
            layer["bias"] = False
        if rng.random() < 0.3:
            layer["activation"] = rng.choice(ACTIVATIONS[:4])
        return layer
    if kind in ("maxpool", "avgpool"):
        layer = {"kind": kind, "size": _pair(rng, 1, 3)}
        if rng.random() < 0.6:
            layer["stride"] = _pair(rng, 1, 3)
        layer["padding"] = _padding(rng, layer["size"])
        return layer
    if kind == "activation":
        return _activation(rng)
    if kind == "batchnorm":
        return {"kind": "batchnorm"}
    if kind == "dropout":
        return {"kind": "dropout", "rate": round(rng.uniform(0.0, 0.6), 2)}
    layer = {"kind": "dense", "units": rng.randint(1, 6)}
    if rng.random() < 0.2:
        layer["bias"] = False
    if rng.random() < 0.3:
        layer["activation"] = rng.choice(ACTIVATIONS[:4])
    return layer


def draw_spec_data(rng: random.Random) -> dict[str, Any]:
    """One spec as data (not yet validated): input, spatial layers, flatten, flat layers, a
    final dense layer with ``classes`` units."""
    classes = rng.randint(2, 5)
    height = rng.choice([1, 1, 2, 3, 5, 7, 9, 12])
    width = rng.choice([1, 1, 2, 3, 5, 7, 9, 12])
    channels = rng.choice([1, 1, 1, 2, 3])
    layers = [_layer(rng, rng.choice(SPATIAL)) for _ in range(rng.randint(1, 4))]
    layers.append({"kind": "flatten"})
    layers += [_layer(rng, rng.choice(FLAT)) for _ in range(rng.randint(0, 2))]
    layers.append({"kind": "dense", "units": classes})
    return {"name": "generated", "input": {"height": height, "width": width,
                                           "channels": channels},
            "classes": classes, "layers": layers,
            "train": {"batch_size": 4, "iterations": 1}}


def random_spec(rng: random.Random, attempts: int = 200) -> tuple[Spec, int]:
    """A valid spec and the number of drawn specs that did not validate before it (shapes
    that do not fit: a window larger than its input, a padding too large, ...)."""
    for rejected in range(attempts):
        data = draw_spec_data(rng)
        try:
            spec = validate_spec(data)
            spec.table  # noqa: B018 -- shape inference is part of validation
        except ConvspecError:
            continue
        return spec, rejected
    raise RuntimeError(f"no valid spec in {attempts} draws")


@dataclass(frozen=True)
class Outcome:
    """What one backend made of one spec: the first difference from the reference, if any."""

    spec: Spec
    backend: str
    failure: Difference | None
    margins: tuple[float, float] = (0.0, 0.0)  # largest difference / allowed: forward, grads

    @property
    def kinds(self) -> str:
        """The layer kind the failure is in ('-' when there is none)."""
        if self.failure is None:
            return "-"
        what = self.failure.what
        if what.startswith("gradient of "):
            name = what.split()[2].split("/")[0]
            return next(f"{r.kind} (gradient)" for r in self.spec.table.rows if r.name == name)
        return what.split("(")[1].split(")")[0]


def check_spec(spec: Spec, backend: str, weights_seed: int = 1) -> Outcome:
    """Compile ``spec`` with ``backend`` and compare it with the reference (forward and
    evaluation-mode gradients) on 4 images, with non-trivial biases and batch-norm state."""
    import numpy as np

    from convspec.backends import get_backend
    from convspec.weights import init_weights

    rng = np.random.default_rng(weights_seed)
    ranges = {"bias": (-0.2, 0.2), "gamma": (0.5, 1.5), "beta": (-0.3, 0.3),
              "moving_mean": (-0.3, 0.3), "moving_variance": (0.5, 2.0)}
    weights = {}
    for name, value in init_weights(spec, weights_seed).items():
        low_high = ranges.get(name.rsplit("/", 1)[-1])
        weights[name] = (rng.uniform(*low_high, value.shape) if low_high else value
                         ).astype(np.float32)
    model = get_backend(backend).compile(spec, weights=weights)
    result = verify_model(model)
    margins = [0.0, 0.0]
    for d in result.differences:
        if d.ok and d.allowed > 0:
            kind = int(d.what.startswith("gradient"))
            margins[kind] = max(margins[kind], d.difference / d.allowed)
    return Outcome(spec, backend, result.first_failure, (margins[0], margins[1]))
