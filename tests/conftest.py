"""Shared fixtures: backends that skip cleanly, tiny datasets, offline data sources."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convspec.data import Dataset, Split

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
BACKENDS = ("torch", "tensorflow")
FIXTURES = ROOT / "tests" / "specs"


def fixture_spec(relative: str) -> str:
    """The text of a spec in the ``tests/specs/`` fixture tree, e.g. ``"train/linear.yaml"``."""
    return (FIXTURES / relative).read_text(encoding="utf-8")


# The trainer's two specs, shared by the trainer, callback, monitor, schedule ... tests
LINEAR = fixture_spec("train/linear.yaml")  # softmax regression on 28x28x1, 12 steps
SMALL = fixture_spec("train/small.yaml")  # one conv layer on 28x28x1, 40 Adam steps

def _shared_mnist() -> Path | None:
    for candidate in (ROOT.parent / "shared" / "data" / "mnist", Path("/work/shared/data/mnist")):
        if (candidate / "t10k-images-idx3-ubyte.gz").is_file():
            return candidate
    return None


SHARED_MNIST = _shared_mnist()


def require_backend(name: str) -> None:
    """Skip the calling test unless the backend's framework is installed."""
    from convspec.backends import is_available

    if not is_available(name):
        pytest.skip(f"backend {name!r} is not installed")


def register_entry_point(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """Register backend ``name`` (``"module:Class"``) in the ``convspec.backends`` entry-point
    group for one test, as an installed package's metadata would."""
    import importlib.metadata

    from convspec.backends import ENTRY_POINT_GROUP

    real = importlib.metadata.entry_points

    def entry_points(**kwargs: Any) -> Any:
        found = list(real(**kwargs))
        if kwargs.get("group") == ENTRY_POINT_GROUP:
            found.append(importlib.metadata.EntryPoint(name, value, ENTRY_POINT_GROUP))
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def slow_except(*fast: str) -> pytest.MarkDecorator:
    """Run a ``backend_name`` test for every backend, marking slow all but the ``fast`` ones:
    ``make test`` keeps one backend of an expensive test, ``make test-all`` runs them all."""
    return pytest.mark.parametrize("backend_name", [
        pytest.param(name, marks=() if name in fast else pytest.mark.slow) for name in BACKENDS
    ], indirect=True)


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return request.param


@pytest.fixture(autouse=True)
def _offline_data(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No test touches the network or the user's cache."""
    from convspec.data import DATASETS

    monkeypatch.setenv("CONVSPEC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("CONVSPEC_DATA_DIR", raising=False)
    for name in DATASETS:
        patch_dataset(monkeypatch, name, mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # the sample fallback is announced once per process: each test is a fresh process here
    monkeypatch.setattr("convspec.data.loader._warned", set())


def patch_dataset(monkeypatch: pytest.MonkeyPatch, name: str, **changes: Any) -> None:
    """Replace fields of one catalog entry (mirrors, sha256, system_dirs ...) for one test."""
    from convspec.data import DATASETS

    monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], **changes))


def tiny_dataset(n_train: int = 96, n_val: int = 32, n_test: int = 40, size: int = 28,
                 classes: int = 10, seed: int = 0) -> Dataset:
    """Learnable synthetic data: each class is a bright bar at its own row."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        labels = rng.integers(0, classes, n).astype(np.int64)
        images = rng.random((n, size, size, 1), dtype=np.float32) * 0.2
        for i, c in enumerate(labels):
            row = (c * size) // classes
            images[i, row:row + 2, :, 0] += 0.8
        return Split(np.ascontiguousarray(images), labels)

    return Dataset("mnist", split(n_train), split(n_val), split(n_test),
                   tuple(str(i) for i in range(classes)), "synthetic", is_sample=False)


def lowbias32(x: np.ndarray) -> np.ndarray:
    """Chris Wellons' lowbias32, written out independently of convspec (the dropout hash's
    reference in the tests)."""
    x = x.astype(np.uint64) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


@pytest.fixture
def linear(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The LINEAR spec as a file, trained by test_train_run's NumpyBackend on tiny data."""
    from test_train_run import NumpyBackend

    import convspec.train.run
    from convspec import backends

    monkeypatch.setitem(backends.BUILTIN, NumpyBackend.name, "test_train_run:NumpyBackend")
    monkeypatch.setattr(convspec.train.run, "load_data", lambda *a, **k: tiny_dataset())
    path = tmp_path / "linear.yaml"
    path.write_text(LINEAR)
    return path
