"""Host memory a training step frees stays with the process for the next step (glibc's malloc).

glibc's ``malloc`` serves blocks of ``M_MMAP_THRESHOLD`` bytes and more with a fresh ``mmap``
each, and gives the top of its heap back to the kernel once more than ``M_TRIM_THRESHOLD``
bytes are free there. Both start small and adapt (``mallopt(3)``: the mmap threshold rises to
the largest block freed, at most 32 MiB on 64-bit, the trim threshold follows at twice it).
A PyTorch CPU training step allocates and frees its activations and gradients every step;
whenever they go back to the kernel, the next step gets them again as new zero-filled pages,
one page fault at a time. The tutorial network at batch 64 took 480-4,550 minor page faults
per step (2-18 MiB) and 11-17 ms per step instead of 9-10 ms, and how often it happened
depended on where the heap's top landed, so it changed from process to process
(``benchmarks/README.md``, "Finding: page faults were the torch backend's gap": it was the gap
between the torch backend measured in one process and in separate ones).

Preloading jemalloc or tcmalloc is the usual cure for PyTorch on CPU; a library cannot preload
an allocator, but it can fix glibc's two thresholds, which also stops their adapting:

* ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's own ceiling for the adaptive value): blocks up to that
  size come from the heap, whose freed space is reused;
* ``M_TRIM_THRESHOLD`` = 1 GiB: up to 1 GiB freed at the top of the heap stays mapped.

A process so keeps its heap at its peak size (of which up to 1 GiB may be free, waiting for
reuse); blocks over 32 MiB (a dataset's arrays) are still mapped and unmapped on their own.
The user's own settings win: glibc's environment variables ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` or a ``GLIBC_TUNABLES`` entry ``glibc.malloc.mmap_threshold`` /
``glibc.malloc.trim_threshold``. Other C libraries (macOS, musl) are left alone. TensorFlow
keeps freed CPU memory in its own allocator (0.5 page faults per step measured), so only the
torch backend asks for this. Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # bytes; DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 1 << 30  # bytes
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
USER_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")

_state: str | None = None  # what keep_freed_memory did in this process


def user_has_set(environ: Mapping[str, str] | None = None) -> str | None:
    """The environment setting of glibc's thresholds that the user made, or None."""
    env = os.environ if environ is None else environ
    for name in USER_SETTINGS:
        if name in env:
            return name
    tunables = env.get("GLIBC_TUNABLES", "")
    for name in USER_TUNABLES:
        if name in tunables:
            return f"GLIBC_TUNABLES {name}"
    return None


def _glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc (it has ``gnu_get_libc_version``)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def _other_malloc(libc: ctypes.CDLL) -> bool:
    """Whether the ``malloc`` this process calls is not glibc's own (jemalloc, tcmalloc or
    mimalloc preloaded): the symbol the program resolves against the one in ``libc.so.6``."""
    own = ctypes.CDLL("libc.so.6")
    address = ctypes.c_void_p
    return ctypes.cast(libc.malloc, address).value != ctypes.cast(own.malloc, address).value


def keep_freed_memory() -> str:
    """Set glibc's mmap and trim thresholds for this process, once; later calls only report.

    Returns what was done: "set", "user" (the user's own environment settings are kept),
    "not glibc" (nothing to do), "other malloc" (a preloaded allocator serves ``malloc``; it
    keeps its own memory), or "refused" (``mallopt`` returned 0, or the C library could not
    be asked). Never raises.
    """
    global _state
    if _state is not None:
        return _state
    if user_has_set() is not None:
        _state = "user"
        return _state
    try:
        libc = _glibc()
        if libc is None:
            _state = "not glibc"
        elif _other_malloc(libc):
            _state = "other malloc"
        else:
            ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            ok &= libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            _state = "set" if ok else "refused"
    except Exception:  # noqa: BLE001 (a speed setting must never stop a training run)
        _state = "refused"
    return _state
