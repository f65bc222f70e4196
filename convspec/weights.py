"""The canonical, framework-neutral weights: names, shapes, initialisation, files.

Layout is the TensorFlow tutorial's: conv kernels HWIO, dense kernels (inputs, units) with
the inputs of the first dense layer after a flatten in H, W, C order. Names, shapes,
trainability and initialisers are each layer's declared weight slots (``convspec.layers``,
read from the shape table). Files are safetensors (never pickle) carrying the network's
fingerprint (``convspec.architecture``), so weights cannot be loaded into a network they were
not made for. Initialisation happens here, once, in NumPy, so every backend starts from
identical numbers.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .architecture import architecture_metadata, check_architecture
from .errors import WeightsError
from .specification import Spec

FORMAT = "convspec-weights/1"


def weight_shapes(spec: Spec) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape, in layer order."""
    return {name: slot.shape for name, slot in spec.table.weights.items()}


def trainable_names(spec: Spec) -> list[str]:
    """Canonical names of the weights the optimizer updates, in layer order (batch-norm
    moving statistics are held but not trained)."""
    return [name for name, slot in spec.table.weights.items() if slot.trainable]


def truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], mean: float,
                     stddev: float) -> np.ndarray:
    """Normal samples, those beyond 2 stddev redrawn (tf.random.truncated_normal)."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev + mean


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _kernel(rng: np.random.Generator, shape: tuple[int, ...], init: Any) -> np.ndarray:
    if init.kind == "truncated_normal":
        return truncated_normal(rng, shape, init.mean, init.stddev)
    if init.kind == "normal":
        return rng.standard_normal(shape) * init.stddev + init.mean
    fan_in, fan_out = _fans(shape)
    if init.kind == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)
    # he_normal, Keras: truncated normal whose stddev after truncation is sqrt(2 / fan_in)
    return truncated_normal(rng, shape, 0.0, math.sqrt(2.0 / fan_in) / 0.87962566103423978)


def _bias(shape: tuple[int, ...], init: Any) -> np.ndarray:
    return np.full(shape, init.value if init.kind == "constant" else 0.0)


# A slot's declared initialiser -> its initial value (rng: the tensor's own stream).
INITIALIZERS: dict[str, Callable[[np.random.Generator, tuple[int, ...], Any], np.ndarray]] = {
    "weights": lambda rng, shape, init: _kernel(rng, shape, init.weights),
    "biases": lambda rng, shape, init: _bias(shape, init.biases),
    "ones": lambda rng, shape, init: np.ones(shape),
    "zeros": lambda rng, shape, init: np.zeros(shape),
}


def init_weights(spec: Spec, seed: int | None = None) -> dict[str, np.ndarray]:
    """Initial canonical weights from the spec's ``init`` and ``seed`` (default train.seed).

    Each tensor has its own stream keyed by its name, so adding a layer does not change the
    initial values of the others.
    """
    seed = spec.train.seed if seed is None else seed
    weights = {}
    for name, slot in spec.table.weights.items():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        value = INITIALIZERS[slot.init](rng, slot.shape, spec.init)
        weights[name] = np.ascontiguousarray(value, dtype=np.float32)
    return weights


def mismatch(expected: Mapping[str, tuple[int, ...]], given: Mapping[str, Any]) -> str:
    """What differs between ``given`` arrays and the expected names and shapes ('' if none)."""
    missing = [n for n in expected if n not in given]
    extra = [n for n in given if n not in expected]
    wrong = [f"{n} {tuple(np.shape(given[n]))} (expected {tuple(expected[n])})" for n in expected
             if n in given and tuple(np.shape(given[n])) != tuple(expected[n])]
    parts = [f"missing {', '.join(missing)}" if missing else "",
             f"unexpected {', '.join(extra)}" if extra else "",
             f"wrong {', '.join(wrong)}" if wrong else ""]
    return "; ".join(p for p in parts if p)


def check_weights(spec: Spec, weights: Mapping[str, np.ndarray], source: str = "weights") -> None:
    """Exactly the spec's names and shapes, or a WeightsError that lists the differences."""
    problems = mismatch(weight_shapes(spec), weights)
    if problems:
        raise WeightsError(f"{source} do not fit spec {spec.name!r}: {problems}")


def check_optimizer_state(state: Mapping[str, Any], slots: Mapping[str, tuple[int, ...]],
                          owner: str) -> int:
    """Validate a canonical optimizer state (``step`` and slot arrays); return the step."""
    problems = mismatch({"step": (), **slots}, state)
    step = np.asarray(state.get("step", 0))
    if step.dtype.kind not in "iu" or (step.shape == () and int(step) < 0):
        problems = "; ".join(p for p in (problems, f"step {step!r} (expected a non-negative "
                                                   "integer scalar)") if p)
    if problems:
        raise WeightsError(f"optimizer state does not fit {owner}: {problems}")
    return int(step)


def save_weights(path: str | os.PathLike[str], weights: Mapping[str, np.ndarray], spec: Spec,
                 metadata: Mapping[str, str] | None = None) -> Path:
    """Write canonical weights as float32 safetensors with their SHA-256 content checksum
    (``convspec.checksum``), atomically (``FileSystemError`` naming the file on failure)."""
    from safetensors.numpy import save_file

    from .atomic_files import atomic_write
    from .checksum import with_checksum

    check_weights(spec, weights)
    path = Path(path)
    meta = {"format": FORMAT, "spec_name": spec.name, **architecture_metadata(spec),
            **(metadata or {})}
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    meta = with_checksum(arrays, meta)
    atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=meta))
    return path


def read_safetensors(path: Path, what: str, unreadable: str | None = None
                     ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(arrays, metadata) of a safetensors file; ``WeightsError`` naming it (as ``what``;
    ``unreadable`` says what a corrupt file means) when it is missing, unreadable or
    corrupt, or its content checksum does not match."""
    from safetensors import safe_open

    from .checksum import verify_checksum

    if not path.is_file():
        raise WeightsError(f"{path}: no such {what}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for corrupt files
        why = unreadable or f"not a readable safetensors {what}"
        raise WeightsError(f"{path}: {why} ({' '.join(str(exc).split())[:200]})") from None
    verify_checksum(arrays, meta, str(path))
    return arrays, meta


def check_values(weights: Mapping[str, np.ndarray], source: str) -> None:
    """Every weight float32 and finite, or a ``WeightsError`` naming the first that is not
    (the canonical format is float32; other types are refused, not converted)."""
    for name, value in weights.items():
        if value.dtype != np.float32:
            raise WeightsError(f"{source}: weight {name} is {value.dtype}; convspec weights "
                               f"are float32")
        if not np.isfinite(value).all():
            raise WeightsError(f"{source}: weight {name} holds NaN or infinite values")


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(weights, metadata) of a safetensors weights file: checked to be a convspec weights
    file, intact (its checksum, when it has one) and float32 and finite (``WeightsError``)."""
    path = Path(path)
    arrays, meta = read_safetensors(path, "weights file")
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a convspec weights file (no '{FORMAT}' metadata)")
    check_values(arrays, str(path))
    return arrays, meta


def load_weights(path: str | os.PathLike[str], spec: Spec) -> dict[str, np.ndarray]:
    """Weights from ``path``, checked to have been made for ``spec``'s network (the same
    architecture, however either spec spells it: ``convspec.architecture``)."""
    arrays, meta = read_weights(path)
    check_architecture(meta, spec, str(path), "the weights file")
    check_weights(spec, arrays, str(path))
    return arrays
