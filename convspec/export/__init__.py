"""Export a spec with trained weights to a deployable format, and check it against NumPy.

Every format takes NHWC float32 images (any batch size) and returns the logits (N, classes)
in evaluation mode (dropout off, batch norm on its moving statistics): exactly what
``convspec.backends.reference.ReferenceModel`` computes.

* ``onnx``: built directly from the spec and the canonical weights with the ``onnx`` package
  (no framework involved, convspec's numerics spelled out op by op); any backend's runs.
* ``torchscript``: the PyTorch backend's network, traced behind an NHWC wrapper.
* ``savedmodel``: the TensorFlow backend's network behind a ``serving_default`` signature.

An export is written next to its destination under a temporary name, loaded back and compared
with the NumPy reference on deterministic pseudo-random images, and only then renamed into
place, so a failed or inaccurate export never replaces anything. Frameworks are imported only
by the format that needs them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic_files import (
    check_writable,
    remove_stale_temporaries,
    temporary_name,
    write_error,
)
from ..errors import BackendError, ConvspecError, UsageError
from ..specification import Spec

TOLERANCE = 1e-5
VERIFY_BATCH = 8
VERIFY_SEED = 0


class ExportError(ConvspecError):
    """An export could not be written, or does not compute what the spec means."""


@dataclass(frozen=True)
class Format:
    """One export format: how to write it, how to run what was written, what it needs."""

    name: str
    title: str
    default_name: str  # under the run directory
    is_dir: bool
    write_needs: tuple[tuple[str, str, str], ...]  # (module, human name, pip extra)
    run_needs: tuple[tuple[str, str, str], ...]
    module: str  # convspec.export.<module> has write(spec, weights, path) and run(path, x)
    backend: str | None = None  # the backend whose network it writes (None: built directly)


_ONNX = ("onnx", "the onnx package", "export")
_ORT = ("onnxruntime", "ONNX Runtime", "export")
_TORCH = ("torch", "PyTorch", "torch")
_TF = ("tensorflow", "TensorFlow", "tf")

FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", "ONNX", "model.onnx", False, (_ONNX,), (_ORT,), "onnx_format"),
    "torchscript": Format("torchscript", "TorchScript", "model.torchscript.pt", False,
                          (_TORCH,), (_TORCH,), "torchscript_format", "torch"),
    "savedmodel": Format("savedmodel", "TensorFlow SavedModel", "savedmodel", True,
                         (_TF,), (_TF,), "savedmodel_format", "tensorflow"),
}


@dataclass(frozen=True)
class ExportResult:
    """Where the export was written and, unless verification was skipped, its max abs
    difference from the NumPy reference."""

    path: Path
    format: str
    max_abs_diff: float | None


def get_format(name: str) -> Format:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise UsageError(f"unknown export format {name!r}; choose one of "
                         f"{', '.join(FORMATS)}") from None


def default_path(run_dir: str | os.PathLike[str], fmt: str) -> Path:
    """``RUN_DIR/model.onnx``, ``RUN_DIR/model.torchscript.pt`` or ``RUN_DIR/savedmodel``."""
    return Path(run_dir) / get_format(fmt).default_name


def _require(needs: tuple[tuple[str, str, str], ...], what: str, hint: str = "") -> None:
    for module, human, extra in needs:
        if importlib.util.find_spec(module) is None:
            raise BackendError(f"{what} needs {human}, which is not installed: "
                               f'pip install "convspec[{extra}]"{hint}')


def _impl(fmt: Format) -> Any:
    """The module that implements ``fmt`` (imported only now)."""
    return importlib.import_module(f"{__name__}.{fmt.module}")


def verify_images(spec: Spec, n: int = VERIFY_BATCH, seed: int = VERIFY_SEED) -> np.ndarray:
    """Deterministic pseudo-random NHWC float32 images in [0, 1) (the datasets' range)."""
    rng = np.random.default_rng(seed)
    shape = (n, spec.input.height, spec.input.width, spec.input.channels)
    return rng.random(shape, dtype=np.float32)


def run_export(path: str | os.PathLike[str], fmt: str, images: np.ndarray) -> np.ndarray:
    """Load an export with its own runtime and return its logits for NHWC ``images``."""
    f = get_format(fmt)
    _require(f.run_needs, f"loading a {f.title} export")
    return np.asarray(_impl(f).run(Path(path), np.ascontiguousarray(images, np.float32)))


@dataclass(frozen=True)
class Comparison:
    """An export's logits against the NumPy reference's on the same images."""

    max_abs_diff: float
    max_abs_logit: float  # of the reference

    def limit(self, tolerance: float = TOLERANCE) -> float:
        """``tolerance`` per unit of the largest logit (at least 1): float32 rounding grows
        with the size of the numbers, and trained networks have logits of 10 to 50."""
        return tolerance * max(1.0, self.max_abs_logit)

    def tolerance_text(self, tolerance: float = TOLERANCE) -> str:
        if self.max_abs_logit <= 1.0:
            return f"{tolerance:g}"
        return (f"{self.limit(tolerance):.3g} = {tolerance:g} x largest |logit| "
                f"{self.max_abs_logit:.3g}")

    def describe(self, tolerance: float = TOLERANCE) -> str:
        return (f"max abs diff vs NumPy reference: {self.max_abs_diff:.3g} "
                f"(tolerance {self.tolerance_text(tolerance)})")


def compare_export(path: str | os.PathLike[str], fmt: str, spec: Spec,
                   weights: Mapping[str, np.ndarray],
                   images: np.ndarray | None = None) -> Comparison:
    """Run the export and the NumPy reference on ``images`` (default:
    ``verify_images(spec)``) as one batch, and the export on the first image alone (which
    also checks that its batch dimension is really dynamic); compare the logits."""
    from ..backends.reference import ReferenceModel

    f = get_format(fmt)
    _require(f.run_needs, f"verifying a {f.title} export", " (or skip the check: --no-verify)")
    x = verify_images(spec) if images is None else np.ascontiguousarray(images, np.float32)
    expected = ReferenceModel(spec, weights).predict(x).astype(np.float64)
    diffs = []
    for batch, want in ((x, expected), (x[:1], expected[:1])):
        got = run_export(path, f.name, batch)
        if got.shape != want.shape:
            raise ExportError(f"{path}: the {f.title} export returned logits of shape "
                              f"{got.shape} for {len(want)} images; expected {want.shape}")
        diffs.append(np.abs(got.astype(np.float64) - want))
    # NaN or infinity anywhere (the export's logits or the reference's) is a failure: the
    # difference is NaN, which no tolerance accepts (max(0.0, nan) would have been 0.0)
    diff = max((float(np.max(d)) if d.size else 0.0 for d in diffs), default=0.0)
    if not all(np.isfinite(d).all() for d in diffs):
        diff = float("nan")
    largest = float(np.max(np.abs(expected))) if expected.size else 0.0
    return Comparison(diff, largest)


def verify_export(path: str | os.PathLike[str], fmt: str, spec: Spec,
                  weights: Mapping[str, np.ndarray], images: np.ndarray | None = None) -> float:
    """Max abs difference between the export's logits and the NumPy reference's
    (see ``compare_export``)."""
    return compare_export(path, fmt, spec, weights, images).max_abs_diff


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _check_destination(out: Path, f: Format, force: bool) -> None:
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise UsageError(f"{out} already exists; choose another --out, or pass --force to "
                         f"replace it")
    if out.is_dir() and not out.is_symlink():
        # --force replaces an earlier export, never some other directory of the user's
        if not (f.is_dir and (out / "saved_model.pb").is_file()):
            what = "SavedModel directory" if f.is_dir else "file"
            raise UsageError(f"{out} is a directory that is not a {f.title} export; --force "
                             f"replaces an existing {what} only. Choose another --out")


def _install(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and then dropped."""
    if out.is_dir() and not out.is_symlink():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        _remove(old)
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(old, out)
            raise
        _remove(old)
    elif tmp.is_dir() and (out.exists() or out.is_symlink()):
        out.unlink()
        os.replace(tmp, out)
    else:
        os.replace(tmp, out)


def export_model(spec: Spec, weights: Mapping[str, np.ndarray], fmt: str,
                 out: str | os.PathLike[str], *, force: bool = False, verify: bool = True,
                 tolerance: float = TOLERANCE, log: Callable[[str], None] | None = None,
                 metadata: Mapping[str, str] | None = None) -> ExportResult:
    """Write ``spec`` with ``weights`` (canonical) as ``fmt`` to ``out``, safely.

    Refuses an existing ``out`` unless ``force``. The export is written under a temporary
    name next to ``out``; unless ``verify`` is False it is loaded back with its own runtime and
    its logits compared with the NumPy reference (``compare_export``): a max abs difference
    above ``tolerance`` (per unit of the largest logit, when that exceeds 1; see
    ``Comparison.limit``) deletes it and raises ExportError. ``metadata`` (string values:
    the class names and preprocessing, see ``data_metadata``) is stored with the model's own
    (ONNX metadata properties ``convspec.<key>``; ``convspec.json`` in TorchScript's extra
    files and the SavedModel's ``assets.extra``). Only a finished (and verified)
    export is renamed to ``out``, so a failure leaves nothing half-written and an existing
    ``out`` untouched.
    """
    from ..weights import check_weights

    f = get_format(fmt)
    out = Path(out)
    check_weights(spec, weights)
    _check_destination(out, f, force)
    _require(f.write_needs, f"exporting to {f.title}")
    if f.backend is not None:
        from ..backends import check_support, get_backend

        check_support(get_backend(f.backend), spec)
    if verify:
        _require(f.run_needs, f"verifying a {f.title} export",
                 " (or skip the check: --no-verify)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, out.parent, "cannot create") from None
    check_writable(out.parent, out)  # before minutes of writing
    remove_stale_temporaries(out.parent)  # of exports killed mid-write
    tmp = out.with_name(f"{temporary_name(out)}export.tmp")
    _remove(tmp)
    try:
        arrays = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        if metadata:
            _impl(f).write(spec, arrays, tmp, dict(metadata))
        else:
            _impl(f).write(spec, arrays, tmp)
        diff = None
        if verify:
            result = compare_export(tmp, f.name, spec, weights)
            diff = result.max_abs_diff
            if log is not None:
                log(result.describe(tolerance))
            if not np.isfinite(result.max_abs_logit) or np.isnan(diff):
                raise ExportError(
                    f"the {f.title} export computes NaN or infinite logits (the NumPy "
                    f"reference's largest |logit| is {result.max_abs_logit:.3g}, the "
                    f"difference {diff:.3g}): the weights do not make a usable model; "
                    f"nothing was written to {out}")
            if not diff <= result.limit(tolerance):
                raise ExportError(
                    f"the {f.title} export does not reproduce the NumPy reference: max abs "
                    f"diff {diff:.3g} exceeds the tolerance {result.tolerance_text(tolerance)}"
                    f"; nothing was written to {out}")
        _install(tmp, out)
    except OSError as exc:
        raise write_error(exc, out) from None
    finally:
        _remove(tmp)
    return ExportResult(out, f.name, diff)



def data_metadata(class_names: Sequence[str], preprocessing: Any) -> dict[str, str]:
    """Export metadata for a run's data: ``class_names`` (a JSON list, one per output) and
    ``preprocessing`` (JSON: ``scale``, ``mean``, ``std`` and the ``input`` formula, i.e. what
    the exported model expects: NHWC float32 images preprocessed so)."""
    import json

    pre = {**preprocessing.to_dict(), "input": preprocessing.formula(), "layout": "NHWC float32"}
    return {"class_names": json.dumps(list(class_names)), "preprocessing": json.dumps(pre)}


__all__ = ["FORMATS", "TOLERANCE", "Comparison", "ExportError", "ExportResult",
           "compare_export", "data_metadata", "default_path", "export_model", "get_format",
           "run_export", "verify_export", "verify_images"]
