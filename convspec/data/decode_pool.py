"""Decoding many image files at once: worker processes over ranges of files, with progress.

Each worker is a fresh ``python -m convspec.data.decode_pool`` that decodes its contiguous
range of files with ``convspec.data.decoder`` straight into the shared memory-mapped ``.npy``
file, and reports progress and problems as JSON lines. Fresh processes (rather than a
``multiprocessing`` pool) never re-run the caller's script and are safe when a framework with
its own threads is already loaded; the result is the same whatever the number of workers.
Small jobs are decoded in this process: starting workers costs more than it saves.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .decoder import DecodeOptions, ImageProblem, decode_image

IN_PROCESS_BELOW = 2000  # files; fewer are decoded without workers
REPORT_EVERY = 250  # files between a worker's progress messages


@dataclass
class DecodeReport:
    """What decoding met: files left out (index, message), resized and alpha-only images."""

    skipped: list[tuple[int, str]] = field(default_factory=list)
    resized: int = 0
    alpha_only: int = 0
    seconds: float = 0.0


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _decode_range(paths: Sequence[str], start: int, out: np.ndarray, options: DecodeOptions,
                  emit: Callable[[dict[str, Any]], None]) -> None:
    """Decode ``paths`` into ``out[start:]``, emitting progress and problems as dicts."""
    since = 0
    for i, path in enumerate(paths):
        try:
            decoded = decode_image(path, options)
        except ImageProblem as exc:
            emit({"problem": [start + i, exc.kind, exc.message]})
        else:
            out[start + i] = decoded.pixels
            if decoded.resized_from is not None:
                emit({"resized": 1})
            if decoded.alpha_only:
                emit({"alpha_only": 1})
        since += 1
        if since == REPORT_EVERY or i == len(paths) - 1:
            emit({"done": since})
            since = 0


def decode_files(paths: Sequence[str], out: np.ndarray, options: DecodeOptions, *,
                 skip_unreadable: bool = False, workers: int | None = None,
                 log: Callable[[str], None] | None = None) -> DecodeReport:
    """Decode ``paths`` into ``out`` ((N, H, W, C) uint8; a ``numpy.memmap`` of a ``.npy``
    file for worker processes to share) in order.

    A file of the wrong size (without a resize) is always an error; an unreadable one is an
    error unless ``skip_unreadable`` (its row stays zero and is reported). Raises
    ``DataError`` naming a bad file. ``workers`` defaults to the available CPUs.
    """
    report, began = DecodeReport(), time.perf_counter()
    n = len(paths)
    say = log or (lambda message: None)
    done, next_report = 0, n // 10

    def take(message: dict[str, Any]) -> None:
        nonlocal done, next_report
        if "problem" in message:
            index, kind, text = message["problem"]
            if kind == "size" or not skip_unreadable:
                hint = (" (or leave such files out: on_error: skip)" if kind != "size" else
                        "; add resize: bilinear (or another filter) to train.dataset to "
                        "resize every image")
                raise DataError(f"{text}{hint}")
            report.skipped.append((index, text))
        report.resized += message.get("resized", 0)
        report.alpha_only += message.get("alpha_only", 0)
        done += message.get("done", 0)
        if done >= next_report and n >= 10 * REPORT_EVERY and done < n:
            say(f"  decoded {done:,} / {n:,} images ({100 * done // n}%)")
            next_report = done + n // 10

    workers = max(1, min(workers or available_cpus(), n // (IN_PROCESS_BELOW // 2) or 1))
    filename = getattr(out, "filename", None)
    if workers == 1 or n < IN_PROCESS_BELOW or filename is None:
        _decode_range(paths, 0, out, options, take)
    else:
        _in_workers(paths, Path(filename), options, workers, take)
    report.skipped.sort()
    report.seconds = time.perf_counter() - began
    return report


def _in_workers(paths: Sequence[str], npy: Path, options: DecodeOptions, workers: int,
                take: Callable[[dict[str, Any]], None]) -> None:
    import dataclasses

    import convspec

    env = dict(os.environ)
    package_root = str(Path(convspec.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    messages: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
    bounds = [len(paths) * k // workers for k in range(workers + 1)]
    procs, logs = [], []
    for w in range(workers):
        job = {"npy": str(npy), "start": bounds[w], "paths": list(paths[bounds[w]:bounds[w + 1]]),
               "options": dataclasses.asdict(options)}
        logs.append(tempfile.TemporaryFile("w+"))
        proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=logs[-1], env=env, text=True)
        procs.append(proc)
        threading.Thread(target=_feed, args=(proc, job, w, messages), daemon=True).start()
    try:
        running = workers
        while running:
            w, message = messages.get()
            if message is None:
                running -= 1
                proc = procs[w]
                if proc.wait() != 0:
                    logs[w].seek(0)
                    raise DataError(f"a decoding worker failed (exit status {proc.returncode}): "
                                    f"{logs[w].read()[-2000:]}")
            else:
                take(message)
    finally:
        for proc, log in zip(procs, logs):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            log.close()


def _feed(proc: subprocess.Popen[str], job: dict[str, Any], w: int,
          messages: queue.Queue[tuple[int, dict[str, Any] | None]]) -> None:
    """Send the job, then pass the worker's JSON lines on; None when it has finished."""
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
        for line in proc.stdout:
            messages.put((w, json.loads(line)))
    except (OSError, ValueError):
        pass  # the worker died: its exit status says so
    messages.put((w, None))


def _worker() -> None:
    job = json.load(sys.stdin)
    options = DecodeOptions(**{**job["options"], "background": tuple(job["options"][
        "background"])})
    out = np.load(job["npy"], mmap_mode="r+")

    def emit(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    _decode_range(job["paths"], job["start"], out, options, emit)
    out.flush()


if __name__ == "__main__":
    _worker()
