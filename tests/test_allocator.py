"""convspec.allocator: glibc's mmap and trim thresholds, set once, the user's settings kept.

``mallopt`` is process-wide, so what it changes is observed in fresh interpreters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS, require_backend

from convspec import allocator

LIBC = allocator._glibc()
GLIBC = LIBC is not None and hasattr(LIBC, "mallinfo2") and not allocator._other_malloc(LIBC)
needs_glibc = pytest.mark.skipif(not GLIBC, reason="glibc >= 2.33 (mallinfo2) serving malloc")
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")

# A 20 MiB block allocated and freed; mallinfo2 before freeing (bytes mmapped) and after
# (bytes of heap still held, of which free).
PROBE = """
import ctypes, json, numpy as np
from convspec.allocator import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
state = keep_freed_memory() if SET else None
block = np.ones(20 << 18, dtype=np.float32)
mapped = libc.mallinfo2().hblkhd
del block
after = libc.mallinfo2()
print(json.dumps({"state": state, "mapped": mapped, "heap": after.arena,
                  "free": after.fordblks}))
"""
MIB = 1 << 20


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in allocator.USER_SETTINGS and k != "GLIBC_TUNABLES"}
    return env | extra


def probe(set_it: bool, env: dict[str, str]) -> dict:
    code = PROBE.replace("SET", repr(set_it))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_glibc
def test_glibc_maps_a_large_block_by_default_and_keeps_nothing():
    """The baseline the setting changes: a 20 MiB block is mmapped, and unmapped when freed."""
    got = probe(False, clean_env())
    assert got["mapped"] >= 20 * MIB
    assert got["free"] < 20 * MIB


@needs_glibc
def test_the_set_thresholds_serve_a_large_block_from_the_heap_and_keep_it_when_freed():
    got = probe(True, clean_env())
    assert got["state"] == "set"
    assert got["mapped"] < 20 * MIB  # from the heap, not its own mmap
    assert got["free"] >= 20 * MIB and got["heap"] >= 20 * MIB  # freed, still held


@needs_glibc
@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "131072"},
                                 {"MALLOC_MMAP_THRESHOLD_": "131072"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}])
def test_the_users_own_malloc_settings_win(env):
    got = probe(True, clean_env(**env))
    assert got["state"] == "user"
    assert got["mapped"] >= 20 * MIB  # glibc as the user configured it, not convspec's


def test_user_has_set_names_the_setting():
    assert allocator.user_has_set({}) is None
    assert allocator.user_has_set({"MALLOC_TRIM_THRESHOLD_": "0"}) == "MALLOC_TRIM_THRESHOLD_"
    assert allocator.user_has_set({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1:x=2"}) \
        == "GLIBC_TUNABLES glibc.malloc.mmap_threshold"
    assert allocator.user_has_set({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}) is None


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(allocator, "_state", None)
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    for name in (*allocator.USER_SETTINGS, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    assert allocator.keep_freed_memory() == "not glibc"
    assert allocator.keep_freed_memory() == "not glibc"  # decided once


class FakeLibc:
    """A C library whose ``mallopt`` records its calls and answers ``answer``."""

    def __init__(self, answer: int = 1):
        self.answer, self.calls = answer, []

    def mallopt(self, option: int, value: int) -> int:
        self.calls.append((option, value))
        return self.answer


@pytest.fixture
def fresh(monkeypatch):
    """keep_freed_memory undecided, no user settings in the environment; returns a function
    that installs a fake C library (``other``: a preloaded malloc serves this process)."""
    monkeypatch.setattr(allocator, "_state", None)
    for name in (*allocator.USER_SETTINGS, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)

    def install(libc: FakeLibc, other: bool = False) -> FakeLibc:
        monkeypatch.setattr(allocator, "_glibc", lambda: libc)
        monkeypatch.setattr(allocator, "_other_malloc", lambda _: other)
        return libc

    return install


def test_both_thresholds_are_set_once_per_process(fresh):
    libc = fresh(FakeLibc())
    assert allocator.keep_freed_memory() == "set"
    assert allocator.keep_freed_memory() == "set"
    assert libc.calls == [(allocator.M_MMAP_THRESHOLD, 32 << 20),
                          (allocator.M_TRIM_THRESHOLD, 1 << 30)]


def test_a_refusing_mallopt_is_reported_not_raised(fresh):
    fresh(FakeLibc(answer=0))
    assert allocator.keep_freed_memory() == "refused"


def test_a_preloaded_allocator_is_left_alone(fresh):
    libc = fresh(FakeLibc(), other=True)
    assert allocator.keep_freed_memory() == "other malloc"
    assert libc.calls == []


def test_an_unexpected_failure_of_the_c_library_is_reported_not_raised(fresh, monkeypatch):
    def broken() -> None:
        raise TypeError("not a C library")

    fresh(FakeLibc())
    monkeypatch.setattr(allocator, "_glibc", broken)
    assert allocator.keep_freed_memory() == "refused"


@pytest.mark.skipif(not JEMALLOC.exists(), reason=f"{JEMALLOC} is not installed")
def test_a_real_preloaded_jemalloc_is_detected():
    code = "from convspec.allocator import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=clean_env(LD_PRELOAD=str(JEMALLOC)), cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "other malloc"


# A torch training step of the tutorial network (batch 64), minor page faults per step after
# 10 warm-up steps; without the thresholds 480-4,500 per step were measured.
TRAIN = """
import json, resource, numpy as np, convspec
from convspec import allocator
model = convspec.compile(convspec.load_spec(SPEC), backend="torch")
rng = np.random.default_rng(0)
x = rng.random((64, 28, 28, 1), dtype=np.float32)
y = rng.integers(0, 10, 64)
for _ in range(10):
    model.train_step(x, y)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    model.train_step(x, y)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(json.dumps({"state": allocator.keep_freed_memory(), "faults": faults}))
"""


@needs_glibc
def test_torch_training_steps_reuse_freed_memory():
    require_backend("torch")
    code = TRAIN.replace("SPEC", repr(str(SPECS / "mnist.yaml")))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=clean_env(), cwd=ROOT, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["state"] == "set"
    assert got["faults"] < 100, got
